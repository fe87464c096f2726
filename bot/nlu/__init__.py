"""Custom Rasa NLU components: language detection, weighted regex features and the bad-input guard."""
