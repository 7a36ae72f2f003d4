"""The extension-based worker: extension health, worker service, managed identity, migration
remnants, and the Arc grants of a custom worker credential.

One test per check registered in ``hrw_preflight/verdicts/extension.py`` (``@check(ID)``),
generated, so adding a check there adds its test here. The plugin parametrises each test
over (host, item); the ``hrw_case`` fixture gathers the host's facts once and judges them.
"""

from hrw_preflight.run.scenario_tests import scenario_tests

globals().update(scenario_tests("extension", __name__))
