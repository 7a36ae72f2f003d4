"""The pytest entry point of hrw-preflight: the run stage's plugin, then the report stage's.

It sits above every stage so that neither stage has to import the other to be loaded
(``run`` may not import ``report``; ``report`` reads what ``run`` records).
"""

pytest_plugins = [
    "hrw_preflight.run.plugin",
    "hrw_preflight.run.site_checks",
    "hrw_preflight.report.evidence_plugin",
]
