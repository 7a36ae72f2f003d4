"""The textbook baseline: the suite's checks written the usual testinfra way."""
