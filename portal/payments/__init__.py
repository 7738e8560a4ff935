"""Stripe: PaymentIntents, refunds and signed webhooks. The only code that calls Stripe; it knows
no orders or contracts: the features that take payments register handlers for its events."""
