"""Probes: the only code that talks to hosts. Each returns sections of plain facts."""
