"""Windows probe: the PowerShell script run over WinRM and its parser."""
