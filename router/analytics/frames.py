"""The CRM read into pandas frames once per request, so every analysis starts from the same rows."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql import Select

from router.analytics.period import Period
from router.crm.models import Conversation, CsatRating, Interaction, Speaker, Team, Ticket


def _frame(session: Session, statement: Select, columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(session.execute(statement).all(), columns=columns)


def tickets(session: Session, period: Period) -> pd.DataFrame:
    """Tickets created in ``period`` with their team, timings, mean CSAT and hours to respond/resolve."""
    csat = (
        select(CsatRating.ticket_id, func.avg(CsatRating.score).label("csat"))
        .where(CsatRating.ticket_id.is_not(None))
        .group_by(CsatRating.ticket_id)
        .subquery()
    )
    statement = (
        select(
            Ticket.id,
            Ticket.customer_id,
            Ticket.conversation_id,
            Ticket.channel,
            Ticket.language,
            Ticket.category,
            Ticket.priority,
            Team.name,
            Ticket.status,
            Ticket.created_at,
            Ticket.first_responded_at,
            Ticket.resolved_at,
            Ticket.first_response_due_at,
            Ticket.resolution_due_at,
            Ticket.reopen_count,
            Ticket.transfer_count,
            Ticket.description,
            csat.c.csat,
        )
        .outerjoin(Team, Team.id == Ticket.team_id)
        .outerjoin(csat, csat.c.ticket_id == Ticket.id)
        .where(Ticket.created_at >= period.start, Ticket.created_at < period.end)
        .order_by(Ticket.id)
    )
    columns = [
        "id",
        "customer_id",
        "conversation_id",
        "channel",
        "language",
        "category",
        "priority",
        "team",
        "status",
        "created_at",
        "first_responded_at",
        "resolved_at",
        "first_response_due_at",
        "resolution_due_at",
        "reopen_count",
        "transfer_count",
        "description",
        "csat",
    ]
    frame = _frame(session, statement, columns)
    for column in ("created_at", "first_responded_at", "resolved_at", "first_response_due_at", "resolution_due_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    frame["channel"] = frame["channel"].map(lambda value: getattr(value, "value", value))
    frame["status"] = frame["status"].map(lambda value: getattr(value, "value", value))
    frame["team"] = frame["team"].fillna("unassigned")
    frame["first_response_hours"] = (frame["first_responded_at"] - frame["created_at"]).dt.total_seconds() / 3600
    frame["resolution_hours"] = (frame["resolved_at"] - frame["created_at"]).dt.total_seconds() / 3600
    frame["csat"] = frame["csat"].astype(float)
    return frame


def conversations(session: Session, period: Period) -> pd.DataFrame:
    """Conversations started in ``period``, with the team of their first ticket (none when the bot contained it)."""
    first_ticket = (
        select(Ticket.conversation_id, func.min(Ticket.id).label("ticket_id"))
        .where(Ticket.conversation_id.is_not(None))
        .group_by(Ticket.conversation_id)
        .subquery()
    )
    statement = (
        select(
            Conversation.id,
            Conversation.customer_id,
            Conversation.channel,
            Conversation.started_at,
            first_ticket.c.ticket_id,
            Team.name,
        )
        .outerjoin(first_ticket, first_ticket.c.conversation_id == Conversation.id)
        .outerjoin(Ticket, Ticket.id == first_ticket.c.ticket_id)
        .outerjoin(Team, Team.id == Ticket.team_id)
        .where(Conversation.started_at >= period.start, Conversation.started_at < period.end)
    )
    frame = _frame(session, statement, ["id", "customer_id", "channel", "started_at", "ticket_id", "team"])
    frame["channel"] = frame["channel"].map(lambda value: getattr(value, "value", value))
    frame["team"] = frame["team"].fillna("bot")
    frame["started_at"] = pd.to_datetime(frame["started_at"], utc=True)
    return frame


def customer_turns(session: Session, period: Period) -> pd.DataFrame:
    """What customers said in ``period`` with the NLU's intent and confidence."""
    statement = select(Interaction.channel, Interaction.intent, Interaction.confidence).where(
        Interaction.speaker == Speaker.customer,
        Interaction.created_at >= period.start,
        Interaction.created_at < period.end,
    )
    frame = _frame(session, statement, ["channel", "intent", "confidence"])
    frame["channel"] = frame["channel"].map(lambda value: getattr(value, "value", value))
    return frame


def ratings(session: Session, period: Period) -> pd.DataFrame:
    """CSAT ratings given in ``period``, with the customer and channel of the conversation they rate."""
    statement = (
        select(CsatRating.customer_id, CsatRating.ticket_id, CsatRating.score, Conversation.channel)
        .outerjoin(Conversation, Conversation.id == CsatRating.conversation_id)
        .where(CsatRating.created_at >= period.start, CsatRating.created_at < period.end)
    )
    frame = _frame(session, statement, ["customer_id", "ticket_id", "score", "channel"])
    frame["channel"] = frame["channel"].map(lambda value: getattr(value, "value", value))
    return frame
