"""Linux probe: shell scripts run over SSH and their parsers."""
