"""Payment results: Payletter's callback, the buyer's return and cancel, verified and
applied once; status sync and the sweeper."""
