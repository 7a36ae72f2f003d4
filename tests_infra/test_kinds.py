"""Worker kinds: a hybrid worker of some kind is installed, and not the retired agent-based one.

One test per check registered in ``hrw_preflight/verdicts/kinds.py`` (``@check(ID)``),
generated, so adding a check there adds its test here. The plugin parametrises each test
over (host, item); the ``hrw_case`` fixture gathers the host's facts once and judges them.
"""

from hrw_preflight.run.scenario_tests import scenario_tests

globals().update(scenario_tests("kinds", __name__))
