"""Stage 5, report: the evidence record, HTML matrix, waivers, gate and bundle verification."""
