"""Delivery to the company's own ticket system: the outbox, the connectors (email, a signed
webhook, Zammad), the delivery jobs, and status changes reported back."""
