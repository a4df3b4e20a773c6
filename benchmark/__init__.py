"""htraug: benchmark."""
