"""Benchmarks of the suite against lab fleets of growing size (``python -m bench.run``)."""
