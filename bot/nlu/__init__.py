"""Custom Rasa NLU components: language detection and the bad-input guard."""
