"""Image readiness: what must hold on a freshly built image before the worker is registered.

One test per check registered in ``hrw_preflight/verdicts/image.py`` (``@check(ID)``),
generated, so adding a check there adds its test here. The plugin parametrises each test
over (host, item); the ``hrw_case`` fixture gathers the host's facts once and judges them.
"""

from hrw_preflight.run.scenario_tests import scenario_tests

globals().update(scenario_tests("image", __name__))
