"""Microsoft's own DSC health test of the agent-based Linux worker, checked over SSH.

One test per check registered in ``hrw_preflight/verdicts/dsc_health.py`` (``@check(ID)``),
generated like the other scenario tests; the plugin parametrises it over (host, item).
"""

from hrw_preflight.run.scenario_tests import scenario_tests

globals().update(scenario_tests("dsc_health", __name__))
