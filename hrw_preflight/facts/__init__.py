"""Stage 2, facts.

The probes that ask a host for its facts, the shared framing of their output, and the per-host
fact cache.
"""
