"""The hrw-preflight lab: simulated Hybrid Runbook Workers on this machine.

Kept import-free so that ``python -m lab.<service>`` processes (one per Windows host) start
without loading the lab's orchestration code.
"""
