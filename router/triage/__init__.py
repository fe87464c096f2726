"""Triage: complaint category, sentiment and an explainable urgency score → priority and SLA."""

from router.triage.training import train_default_model
from router.triage.triage import Assessment, Triage

__all__ = ["Assessment", "Triage", "train_default_model"]
