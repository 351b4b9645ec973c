"""Refunds: full and partial cancels through Payletter."""
