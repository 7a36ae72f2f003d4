"""Stage 4, run: the pytest wiring (options, parametrisation, the judged case, run order, xdist)."""
