"""Outbound messages to customers on their own channel (Telegram, web chat), and the Rasa HTTP API client."""
