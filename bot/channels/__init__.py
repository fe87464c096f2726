"""kefu's Rasa input channels: Telegram (python-telegram-bot) and the web chat page."""
