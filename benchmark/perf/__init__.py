"""Performance measurements of the benchmark components (run as modules, results in RESULTS.md)."""
