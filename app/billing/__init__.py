"""Autopay: billkeys, charges, amount-0 registrations."""
