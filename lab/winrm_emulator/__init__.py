"""A WinRM (WS-Management) server that stands in for a Windows Hybrid Runbook Worker in the lab."""
