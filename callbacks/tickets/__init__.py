"""The ticket desk: tickets and their history."""
