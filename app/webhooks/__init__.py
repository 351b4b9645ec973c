"""The shop's webhooks: the outbox, its dispatcher and Standard Webhooks signing."""
