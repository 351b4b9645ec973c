"""A small typed SDK for Payletter, the Korean payment gateway (API v1.0)."""
