"""Diagnostic probes (run as modules; results and commands in RESULTS.md)."""
