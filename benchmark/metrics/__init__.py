"""Metrics registry and implementations (FID, KID, Geometry Score, text metrics, readability)."""
