"""Admins review what the bot misunderstood, label it, retrain, gate, promote and roll back models."""
