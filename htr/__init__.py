"""htraug: htr."""
