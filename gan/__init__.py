"""htraug: gan."""
