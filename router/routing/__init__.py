"""Ticket routing: team queues, fair assignment, presence, SLA escalation and the ticket workflow."""
