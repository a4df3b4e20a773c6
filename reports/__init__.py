"""htraug: reports."""
