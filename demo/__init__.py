"""A tiny demo shop, served by the gateway in PAYLETTER_ENV=sim only."""
