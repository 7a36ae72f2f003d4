"""hrw-preflight: preflight checks for Azure Automation Hybrid Runbook Workers."""

__version__ = "0.1.0"
