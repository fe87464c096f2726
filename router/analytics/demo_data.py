"""``kefu demo-data``: a realistic CRM history with planted structure, so every analytics chart has data to show.

The history is written with the CRM's own models and identity service, the rows the assistant's flows would
write, but with timestamps in the past (the live services stamp ``utcnow``). The planted structure below is
what the analytics tests recover: segments, a CSAT effect, an association rule and an emerging topic.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from router.analytics import demo_texts as texts
from router.crm.conversations import find_or_create_identity, sender_id_for
from router.crm.models import (
    Agent,
    Channel,
    Conversation,
    CsatRating,
    Interaction,
    Speaker,
    Team,
    Ticket,
    TicketEvent,
    TicketEventKind,
    TicketStatus,
    utcnow,
)
from router.crm.passwords import Passwords
from router.crm.seed import load_categories, seed_demo
from router.errors import InvalidInput

# CSAT = base + Σ effect × factor + noise (before rounding to 1..5): what the regression must recover.
CSAT_BASE = 4.7
CSAT_EFFECTS = {"first_response_hours": -0.12, "resolution_hours": -0.015, "transfers": -0.35, "reopened": -0.9}
CSAT_NOISE = 0.4
# Customers of phone/headphones faults mostly come back: the association rule to find.
PLANTED_RULE = ({"category=product_quality", "product=headphones"}, "outcome=reopened")
PLANTED_RULE_CONFIDENCE = 0.85
FAULTY_BATCH_SHARE = 0.3
EMERGING_DAYS = 21


@dataclass(frozen=True)
class Segment:
    """A kind of customer planted in the history, with how often they come, complain and when."""

    name: str
    share: float
    visits: float
    complaint_rate: float
    reopen_rate: float
    active_days: tuple[float, float]


# active_days: the part of the history (0 = oldest, 1 = newest) their conversations fall in.
SEGMENTS = (
    Segment("loyal", 0.40, 8.0, 0.10, 0.05, (0.0, 1.0)),
    Segment("unhappy", 0.25, 5.0, 0.75, 0.45, (0.3, 1.0)),
    Segment("dormant", 0.35, 1.5, 0.30, 0.10, (0.0, 0.35)),
)
ANOMALOUS_CUSTOMERS = 3
_HOUR_WEIGHTS = np.array([1, 1, 1, 1, 1, 1, 2, 4, 7, 10, 12, 12, 10, 10, 11, 11, 10, 9, 8, 9, 10, 8, 5, 2], float)
_CHANNELS = (Channel.web, Channel.telegram, Channel.rest)


@dataclass(frozen=True)
class DemoSummary:
    """What was written, for the CLI to print."""

    customers: int
    conversations: int
    tickets: int
    ratings: int


class _HistoryWriter:
    """Writes one generated history into a session; one instance per ``generate_history`` call."""

    def __init__(self, session: Session, data_dir: Path, rng: np.random.Generator, start: datetime, days: int):
        self.session, self.rng, self.start, self.days = session, rng, start, days
        categories = load_categories(data_dir)["categories"]
        self.categories = [name for name in texts.COMPLAINTS if name in categories]
        teams = {team.name: team for team in session.execute(select(Team)).scalars()}
        self.team_of = {name: teams[categories[name]["team"]] for name in self.categories}
        self.agents = list(session.execute(select(Agent)).scalars())
        urgency = yaml.safe_load((data_dir / "triage" / "urgency.yml").read_text(encoding="utf-8"))
        self.sla = {row["priority"]: row for row in urgency["priorities"]}
        self.counts = {"tickets": 0, "ratings": 0}

    def moment(self, span: tuple[float, float]) -> datetime:
        """A time inside ``span`` of the history, at an hour of day weighted like real traffic."""
        day = int(self.rng.uniform(*span) * (self.days - 1))
        hour = int(self.rng.choice(24, p=_HOUR_WEIGHTS / _HOUR_WEIGHTS.sum()))
        midnight = self.start.replace(hour=0, minute=0, second=0, microsecond=0)
        return midnight + timedelta(days=day, hours=hour, minutes=float(self.rng.uniform(0, 59)))

    def conversation(
        self,
        customer_id: int,
        sender: str,
        channel: Channel,
        language: str,
        segment: Segment,
        at: datetime,
        complaint: bool,
    ) -> None:
        """One conversation: the opening turn, the bot's answer, and for complaints a ticket worked to the end."""
        conversation = Conversation(
            customer_id=customer_id,
            sender_id=sender,
            channel=channel,
            language=language,
            started_at=at,
            last_activity_at=at,
        )
        self.session.add(conversation)
        self.session.flush()
        turn = {
            "conversation_id": conversation.id,
            "customer_id": customer_id,
            "channel": channel,
            "language": language,
        }
        if not complaint:
            self._question(turn, language, at)
            return
        category = str(self.rng.choice(self.categories))
        product = str(self.rng.choice(list(texts.PRODUCTS)))
        if category == "product_quality" and self.rng.random() < FAULTY_BATCH_SHARE:
            product = "headphones"  # a faulty batch: most fault reports are about the same headphones
        text = self._complaint_text(category, product, language, at)
        if text.startswith(("充电宝", "the power bank", "power bank")):
            product = "power_bank"
        self.session.add(
            Interaction(
                **turn,
                speaker=Speaker.customer,
                text=text,
                intent="complain",
                confidence=float(self.rng.beta(9, 2)),
                created_at=at,
                entities=[{"entity": "product", "value": product}],
            )
        )
        self._work_ticket(turn, segment, category, product, text, at)

    def _question(self, turn: dict, language: str, at: datetime) -> None:
        if self.rng.random() < 0.08:
            text, intent, confidence = (
                texts.FALLBACK_TEXTS[language],
                "nlu_fallback",
                float(self.rng.uniform(0.1, 0.45)),
            )
        else:
            intent, zh, en = texts.QUESTIONS[int(self.rng.integers(len(texts.QUESTIONS)))]
            text, confidence = (zh if language == "zh" else en), float(self.rng.beta(12, 1.5))
        self.session.add(
            Interaction(
                **turn, speaker=Speaker.customer, text=text, intent=intent, confidence=confidence, created_at=at
            )
        )
        self.session.add(
            Interaction(
                **turn,
                speaker=Speaker.bot,
                text=texts.BOT_REPLIES[language],
                latency_ms=float(self.rng.lognormal(5.2, 0.4)),
                created_at=at + timedelta(seconds=1),
            )
        )
        if self.rng.random() < 0.25:
            self._rate(
                turn["customer_id"],
                turn["conversation_id"],
                None,
                at + timedelta(minutes=2),
                float(self.rng.normal(4.3, 0.5)),
            )

    def _complaint_text(self, category: str, product: str, language: str, at: datetime) -> str:
        recent = at >= self.start + timedelta(days=self.days - EMERGING_DAYS)
        if category == "product_quality" and recent and self.rng.random() < 0.5:
            return str(self.rng.choice(texts.EMERGING_COMPLAINTS[language]))
        template = str(self.rng.choice(texts.COMPLAINTS[category][language]))
        return template.format(product=texts.PRODUCTS[product][language])

    def _work_ticket(self, turn: dict, segment: Segment, category: str, product: str, text: str, at: datetime) -> None:
        rng = self.rng
        priority = int(rng.choice([1, 2, 3, 4], p=[0.06, 0.2, 0.5, 0.24]))
        sla = self.sla[priority]
        first_response_hours = min(float(rng.exponential(sla["first_response_minutes"] / 60 * 0.8)), 12.0)
        resolution_hours = first_response_hours + min(float(rng.exponential(sla["resolution_minutes"] / 60 * 0.5)), 96)
        transfers = int(rng.poisson(0.6 if segment.name == "unhappy" else 0.2))
        planted = category == "product_quality" and product == "headphones"
        reopened = rng.random() < (PLANTED_RULE_CONFIDENCE if planted else segment.reopen_rate)
        agent = self.agents[int(rng.integers(len(self.agents)))]
        team = self.team_of[category]
        responded, resolved = at + timedelta(hours=first_response_hours), at + timedelta(hours=resolution_hours)
        open_still = resolved > utcnow()
        ticket = Ticket(
            customer_id=turn["customer_id"],
            conversation_id=turn["conversation_id"],
            channel=turn["channel"],
            language=turn["language"],
            subject=text[:60],
            description=text,
            category=category,
            category_confidence=float(rng.beta(8, 2)),
            priority=priority,
            team=team,
            assignee_id=agent.id,
            status=TicketStatus.in_progress if open_still else TicketStatus.closed,
            first_response_due_at=at + timedelta(minutes=sla["first_response_minutes"]),
            resolution_due_at=at + timedelta(minutes=sla["resolution_minutes"]),
            first_responded_at=responded,
            resolved_at=None if open_still else resolved,
            reopen_count=int(reopened and not open_still),
            transfer_count=transfers,
            created_at=at,
            updated_at=at,
        )
        self.session.add(ticket)
        self.session.flush()
        self.counts["tickets"] += 1
        turn = {**turn, "ticket_id": ticket.id}
        self.session.add(
            Interaction(
                **turn,
                speaker=Speaker.bot,
                text=texts.TICKET_REPLIES[turn["language"]],
                latency_ms=float(rng.lognormal(5.5, 0.4)),
                created_at=at + timedelta(seconds=1),
            )
        )
        self.session.add(
            Interaction(
                **turn,
                speaker=Speaker.agent,
                agent_id=agent.id,
                created_at=responded,
                text=texts.AGENT_REPLIES[turn["language"]],
            )
        )
        events: list[tuple[TicketEventKind, datetime, dict[str, str]]] = [
            (TicketEventKind.created, at, {}),
            (TicketEventKind.assigned, at, {}),
        ]
        events += [(TicketEventKind.transferred, at + timedelta(minutes=5 * (n + 1)), {}) for n in range(transfers)]
        events.append((TicketEventKind.replied, responded, {}))
        if not open_still:
            resolution = {"resolution": texts.RESOLUTIONS[category][turn["language"]]}
            if reopened:
                events += [
                    (TicketEventKind.resolved, resolved - timedelta(hours=1), resolution),
                    (TicketEventKind.reopened, resolved - timedelta(minutes=30), {}),
                ]
            events += [(TicketEventKind.resolved, resolved, resolution), (TicketEventKind.closed, resolved, {})]
        self.session.add_all(
            TicketEvent(ticket_id=ticket.id, kind=kind, agent_id=agent.id, team_id=team.id, data=data, created_at=when)
            for kind, when, data in events
        )
        if not open_still and rng.random() < 0.7:
            factors = {
                "first_response_hours": first_response_hours,
                "resolution_hours": resolution_hours,
                "transfers": transfers,
                "reopened": float(reopened),
            }
            score = CSAT_BASE + sum(CSAT_EFFECTS[name] * value for name, value in factors.items())
            self._rate(
                turn["customer_id"],
                turn["conversation_id"],
                ticket.id,
                resolved + timedelta(minutes=10),
                score + float(rng.normal(0, CSAT_NOISE)),
            )

    def _rate(self, customer_id: int, conversation_id: int, ticket_id: int | None, at: datetime, raw: float) -> None:
        score = int(np.clip(round(raw), 1, 5))
        self.session.add(
            CsatRating(
                customer_id=customer_id,
                conversation_id=conversation_id,
                ticket_id=ticket_id,
                score=score,
                created_at=at,
            )
        )
        self.counts["ratings"] += 1


def generate_history(
    session: Session,
    passwords: Passwords,
    data_dir: Path,
    *,
    customers: int = 600,
    days: int = 90,
    seed: int = 7,
) -> DemoSummary:
    """Write ``customers`` customers' last ``days`` days of conversations, tickets and ratings into the CRM (an
    empty one gets the demo organisation first, its password hashed with ``passwords``)."""
    if not 10 <= customers <= 20_000:
        raise InvalidInput("customers must be between 10 and 20000")
    if not 30 <= days <= 730:
        raise InvalidInput("days must be between 30 and 730")
    seed_demo(session, passwords, data_dir)
    rng = np.random.default_rng(seed)
    writer = _HistoryWriter(session, data_dir, rng, utcnow() - timedelta(days=days), days)
    conversations = 0
    shares = np.array([segment.share for segment in SEGMENTS])
    for number in range(customers):
        anomalous = number < ANOMALOUS_CUSTOMERS
        segment = SEGMENTS[1] if anomalous else SEGMENTS[int(rng.choice(len(SEGMENTS), p=shares))]
        language = "zh" if rng.random() < 0.55 else "en"
        channel = _CHANNELS[int(rng.choice(3, p=[0.5, 0.35, 0.15]))]
        sender = sender_id_for(channel, f"demo-{seed}-{number}-{rng.integers(1 << 30)}")
        customer_id = find_or_create_identity(session, sender, language).customer_id
        session.flush()
        visits = 45 if anomalous else 1 + int(rng.poisson(segment.visits - 1))
        span = (0.9, 1.0) if anomalous else segment.active_days
        for at in sorted(writer.moment(span) for _ in range(visits)):
            complaint = anomalous or rng.random() < segment.complaint_rate
            writer.conversation(customer_id, sender, channel, language, segment, at, complaint)
            conversations += 1
    session.flush()
    return DemoSummary(customers, conversations, writer.counts["tickets"], writer.counts["ratings"])
