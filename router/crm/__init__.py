"""The CRM: customers, conversations, every logged interaction, tickets and the people who work them."""
