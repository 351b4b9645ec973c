"""Small shared pieces: HTTP dependencies and errors, addresses, signed links, Korea time."""
