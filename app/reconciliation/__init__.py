"""Reconciliation of a Korea date against Payletter's transaction list."""
