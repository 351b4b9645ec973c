"""Orders: opening payments, finding orders, the state machine."""
