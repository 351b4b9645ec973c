"""A local stand-in for the Payletter payment gateway.

Written from the vendor's API page alone. It deliberately imports nothing from the
product (`app/`): its own payhash, its own per-pgcode rules, so a bug in the product
cannot hide behind the same bug in its test double.
"""
