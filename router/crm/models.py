"""The CRM schema as SQLAlchemy mapped classes; Alembic migrations in ``router/migrations`` build it."""

from __future__ import annotations

import enum
from datetime import datetime, timezone
from typing import ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import declarative_base, relationship

# Named constraints keep Alembic's SQLite batch migrations and downgrades deterministic.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)
Base = declarative_base(metadata=metadata)


def utcnow() -> datetime:
    """Timezone-aware now, the only clock the CRM writes."""
    return datetime.now(timezone.utc)


class UtcDateTime(TypeDecorator):
    """A timestamp column that stores UTC and always hands back aware datetimes (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(timezone.utc)
            if dialect.name == "sqlite":
                value = value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value


class Role(str, enum.Enum):
    agent = "agent"
    supervisor = "supervisor"
    admin = "admin"


class Presence(str, enum.Enum):
    online = "online"
    away = "away"
    offline = "offline"


class Channel(str, enum.Enum):
    web = "web"
    telegram = "telegram"
    rest = "rest"


class Speaker(str, enum.Enum):
    customer = "customer"
    bot = "bot"
    agent = "agent"
    system = "system"


class TicketStatus(str, enum.Enum):
    queued = "queued"
    assigned = "assigned"
    in_progress = "in_progress"
    resolved = "resolved"
    closed = "closed"
    merged = "merged"


class TicketEventKind(str, enum.Enum):
    created = "created"
    assigned = "assigned"
    requeued = "requeued"
    transferred = "transferred"
    replied = "replied"
    note = "note"
    escalated = "escalated"
    priority_changed = "priority_changed"
    category_corrected = "category_corrected"
    resolved = "resolved"
    reopened = "reopened"
    closed = "closed"
    merged = "merged"


class ModelStatus(str, enum.Enum):
    candidate = "candidate"
    active = "active"
    retired = "retired"
    refused = "refused"


class JobStatus(str, enum.Enum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"


def _enum(enum_class: type[enum.Enum]) -> Enum:
    # Plain strings in the database: no PostgreSQL ENUM types to migrate when a value is added.
    return Enum(enum_class, native_enum=False, length=32, validate_strings=True)


class User(Base):
    __tablename__ = "users"

    id = Column(Integer, primary_key=True)
    username = Column(String(64), nullable=False, unique=True)
    display_name = Column(String(128), nullable=False)
    password_hash = Column(String(255), nullable=False)
    role = Column(_enum(Role), nullable=False, default=Role.agent)
    active = Column(Boolean, nullable=False, default=True)
    created_at = Column(UtcDateTime(), nullable=False, default=utcnow)

    agent = relationship("Agent", back_populates="user", uselist=False)


agent_teams = Table(
    "agent_teams",
    Base.metadata,
    Column("agent_id", ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True),
    Column("team_id", ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True),
)


class Team(Base):
    __tablename__ = "teams"

    id = Column(Integer, primary_key=True)
    name = Column(String(64), nullable=False, unique=True)
    display_name = Column(String(128), nullable=False)
    created_at = Column(UtcDateTime(), nullable=False, default=utcnow)

    agents = relationship("Agent", secondary=agent_teams, back_populates="teams")


class Agent(Base):
    __tablename__ = "agents"

    id = Column(Integer, primary_key=True)
    user_id = Column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False, unique=True)
    capacity = Column(Integer, nullable=False, default=5)
    languages = Column(JSON, nullable=False, default=lambda: ["zh", "en"])
    skills = Column(JSON, nullable=False, default=list, doc="Complaint categories the agent handles.")
    presence = Column(_enum(Presence), nullable=False, default=Presence.offline)
    last_heartbeat_at = Column(UtcDateTime())
    last_assigned_at = Column(UtcDateTime(), doc="Ties in load go to whoever has waited longest.")
    open_tickets = Column(Integer, nullable=False, default=0, doc="Kept in step with assignments.")

    user = relationship("User", back_populates="agent")
    teams = relationship("Team", secondary=agent_teams, back_populates="agents")


class Customer(Base):
    __tablename__ = "customers"

    id = Column(Integer, primary_key=True)
    display_name = Column(String(128), nullable=False, default="")
    language = Column(String(8), nullable=False, default="zh")
    tier = Column(String(16), nullable=False, default="standard")
    created_at = Column(UtcDateTime(), nullable=False, default=utcnow)

    identities = relationship("ChannelIdentity", back_populates="customer", cascade="all, delete-orphan")


class ChannelIdentity(Base):
    """How one customer is known on one channel: a web chat session, a Telegram chat."""

    __tablename__ = "channel_identities"
    __table_args__ = (UniqueConstraint("channel", "external_id", name="uq_channel_identities_channel_external"),)

    id = Column(Integer, primary_key=True)
    customer_id = Column(ForeignKey("customers.id", ondelete="CASCADE"), nullable=False, index=True)
    channel = Column(_enum(Channel), nullable=False)
    external_id = Column(String(128), nullable=False)
    sender_id = Column(String(160), nullable=False, unique=True, doc="Rasa's sender id for this identity.")
    created_at = Column(UtcDateTime(), nullable=False, default=utcnow)

    customer = relationship("Customer", back_populates="identities")


class Conversation(Base):
    __tablename__ = "conversations"

    id = Column(Integer, primary_key=True)
    customer_id = Column(ForeignKey("customers.id", ondelete="CASCADE"), nullable=False, index=True)
    sender_id = Column(String(160), nullable=False, index=True)
    channel = Column(_enum(Channel), nullable=False)
    language = Column(String(8))
    bot_paused = Column(Boolean, nullable=False, default=False)
    started_at = Column(UtcDateTime(), nullable=False, default=utcnow)
    last_activity_at = Column(UtcDateTime(), nullable=False, default=utcnow)

    customer = relationship("Customer")


class Interaction(Base):
    """One turn: what a customer, the bot or an agent said, with what the NLU understood of it."""

    __tablename__ = "interactions"
    __table_args__ = (Index("ix_interactions_conversation_created", "conversation_id", "created_at"),)

    id = Column(Integer, primary_key=True)
    conversation_id = Column(ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False)
    customer_id = Column(ForeignKey("customers.id", ondelete="CASCADE"), nullable=False, index=True)
    ticket_id = Column(ForeignKey("tickets.id", ondelete="SET NULL"), index=True)
    agent_id = Column(ForeignKey("agents.id", ondelete="SET NULL"))
    speaker = Column(_enum(Speaker), nullable=False)
    channel = Column(_enum(Channel), nullable=False)
    text = Column(Text, nullable=False, default="", doc="Redacted: no phone, email, ID or card number.")
    language = Column(String(8))
    intent = Column(String(96), index=True)
    confidence = Column(Float)
    entities = Column(JSON, nullable=False, default=list)
    latency_ms = Column(Float, doc="For bot turns: time since the customer's message.")
    event_key = Column(String(200), unique=True, doc="Makes re-logging a Rasa event idempotent.")
    delivery = Column(String(16), doc="Outbound turns: sent, failed or pending.")
    buttons = Column(JSON, doc='Outbound turns: quick replies offered, [{"title", "payload"}], so web chat shows them.')
    created_at = Column(UtcDateTime(), nullable=False, default=utcnow, index=True)


class Ticket(Base):
    __tablename__ = "tickets"
    __table_args__ = (Index("ix_tickets_queue", "team_id", "status", "priority", "first_response_due_at", "id"),)

    id = Column(Integer, primary_key=True)
    customer_id = Column(ForeignKey("customers.id", ondelete="CASCADE"), nullable=False, index=True)
    conversation_id = Column(ForeignKey("conversations.id", ondelete="SET NULL"))
    channel = Column(_enum(Channel), nullable=False)
    language = Column(String(8), nullable=False, default="zh")
    subject = Column(String(200), nullable=False, default="")
    description = Column(Text, nullable=False, default="")
    order_number = Column(String(64))
    category = Column(String(64), nullable=False, default="other")
    category_confidence = Column(Float)
    classifier_terms = Column(JSON, nullable=False, default=list)
    needs_review = Column(Boolean, nullable=False, default=False)
    urgency_score = Column(Float, nullable=False, default=0.0)
    urgency_factors = Column(JSON, nullable=False, default=dict)
    urgency_floors = Column(
        JSON,
        nullable=False,
        default=list,
        server_default="[]",
        doc="Dangers that set a floor under the priority (urgency.yml floors): which, the priority, and why.",
    )
    priority = Column(Integer, nullable=False, default=3, doc="1 (P1, most urgent) to 4.")
    status = Column(_enum(TicketStatus), nullable=False, default=TicketStatus.queued, index=True)
    team_id = Column(ForeignKey("teams.id"), index=True)
    assignee_id = Column(ForeignKey("agents.id"), index=True)
    first_response_due_at = Column(UtcDateTime())
    resolution_due_at = Column(UtcDateTime())
    first_responded_at = Column(UtcDateTime())
    resolved_at = Column(UtcDateTime())
    escalation_level = Column(Integer, nullable=False, default=0)
    reopen_count = Column(Integer, nullable=False, default=0)
    transfer_count = Column(Integer, nullable=False, default=0)
    merged_into_id = Column(ForeignKey("tickets.id"))
    created_at = Column(UtcDateTime(), nullable=False, default=utcnow)
    updated_at = Column(UtcDateTime(), nullable=False, default=utcnow, onupdate=utcnow)
    version = Column(Integer, nullable=False, default=1)

    # Two agents saving the same ticket at once: the second gets StaleDataError instead of overwriting.
    __mapper_args__: ClassVar[dict] = {"version_id_col": version}

    customer = relationship("Customer")
    team = relationship("Team")
    assignee = relationship("Agent")
    events = relationship("TicketEvent", back_populates="ticket", order_by="TicketEvent.id")

    @property
    def number(self) -> str:
        """The reference customers and agents quote."""
        return f"T{self.id:06d}"


class TicketEvent(Base):
    """Append-only audit trail of everything that happened to a ticket."""

    __tablename__ = "ticket_events"

    id = Column(Integer, primary_key=True)
    ticket_id = Column(ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False, index=True)
    kind = Column(_enum(TicketEventKind), nullable=False)
    actor_user_id = Column(ForeignKey("users.id"))
    agent_id = Column(ForeignKey("agents.id"), doc="The agent the event is about (assignee, replier).")
    team_id = Column(ForeignKey("teams.id"))
    data = Column(JSON, nullable=False, default=dict)
    created_at = Column(UtcDateTime(), nullable=False, default=utcnow)

    ticket = relationship("Ticket", back_populates="events")


class CannedResponse(Base):
    __tablename__ = "canned_responses"

    id = Column(Integer, primary_key=True)
    team_id = Column(ForeignKey("teams.id"))
    title = Column(String(128), nullable=False)
    language = Column(String(8), nullable=False)
    body = Column(Text, nullable=False)


class CsatRating(Base):
    __tablename__ = "csat_ratings"

    id = Column(Integer, primary_key=True)
    customer_id = Column(ForeignKey("customers.id", ondelete="CASCADE"), nullable=False, index=True)
    conversation_id = Column(ForeignKey("conversations.id", ondelete="SET NULL"))
    ticket_id = Column(ForeignKey("tickets.id", ondelete="SET NULL"), index=True)
    score = Column(Integer, nullable=False)
    comment = Column(Text, nullable=False, default="")
    created_at = Column(UtcDateTime(), nullable=False, default=utcnow)


class FaqEntry(Base):
    __tablename__ = "faq_entries"

    id = Column(Integer, primary_key=True)
    language = Column(String(8), nullable=False)
    question = Column(Text, nullable=False)
    answer = Column(Text, nullable=False)
    tags = Column(JSON, nullable=False, default=list)
    active = Column(Boolean, nullable=False, default=True)
    updated_at = Column(UtcDateTime(), nullable=False, default=utcnow, onupdate=utcnow)


class TrainingExample(Base):
    """A label an admin or agent gave: an intent for a customer turn, or a complaint category for a ticket."""

    __tablename__ = "training_examples"

    id = Column(Integer, primary_key=True)
    target = Column(String(16), nullable=False, doc="'intent' or 'complaint'.")
    text = Column(Text, nullable=False)
    label = Column(String(96), nullable=False, doc="Intent or category name; 'out_of_scope' for noise.")
    language = Column(String(8))
    interaction_id = Column(ForeignKey("interactions.id", ondelete="SET NULL"))
    ticket_id = Column(ForeignKey("tickets.id", ondelete="SET NULL"))
    labelled_by = Column(ForeignKey("users.id"))
    created_at = Column(UtcDateTime(), nullable=False, default=utcnow)


class ModelVersion(Base):
    __tablename__ = "model_versions"
    __table_args__ = (
        UniqueConstraint("kind", "version", name="uq_model_versions_kind_version"),
        # At most one active model per kind: two promotions racing cannot both win.
        Index(
            "uq_model_versions_one_active",
            "kind",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
    )

    id = Column(Integer, primary_key=True)
    kind = Column(String(16), nullable=False, doc="'nlu' (the Rasa model) or 'triage'.")
    version = Column(String(64), nullable=False)
    path = Column(String(500), nullable=False)
    data_hash = Column(String(64), nullable=False)
    metrics = Column(JSON, nullable=False, default=dict)
    status = Column(_enum(ModelStatus), nullable=False, default=ModelStatus.candidate)
    created_by = Column(ForeignKey("users.id"))
    note = Column(Text, nullable=False, default="")
    created_at = Column(UtcDateTime(), nullable=False, default=utcnow)
    promoted_at = Column(UtcDateTime())


class Job(Base):
    """A background job (retraining) with progress the page and the terminal both show."""

    __tablename__ = "jobs"
    __table_args__ = (
        # One unfinished job per kind: a second retrain request fails in the database, whichever process sends it.
        Index(
            "uq_jobs_one_unfinished_per_kind",
            "kind",
            unique=True,
            sqlite_where=text("status IN ('queued', 'running')"),
            postgresql_where=text("status IN ('queued', 'running')"),
        ),
    )

    id = Column(Integer, primary_key=True)
    kind = Column(String(32), nullable=False)
    status = Column(_enum(JobStatus), nullable=False, default=JobStatus.queued)
    progress = Column(Float, nullable=False, default=0.0)
    message = Column(String(255), nullable=False, default="")
    log = Column(Text, nullable=False, default="")
    params = Column(JSON, nullable=False, default=dict)
    created_by = Column(ForeignKey("users.id"))
    created_at = Column(UtcDateTime(), nullable=False, default=utcnow)
    started_at = Column(UtcDateTime())
    # Written every few seconds by the process running the job; a running job whose heartbeat stops is taken over.
    heartbeat_at = Column(UtcDateTime())
    finished_at = Column(UtcDateTime())


class IntentDefinition(Base):
    """An intent an admin created while labelling, with the responses the bot gives for it."""

    __tablename__ = "intent_definitions"

    id = Column(Integer, primary_key=True)
    name = Column(String(96), nullable=False, unique=True)
    responses = Column(JSON, nullable=False, default=list, doc="[{'language': 'zh'|'en', 'text': ...}]")
    created_by = Column(ForeignKey("users.id"))
    created_at = Column(UtcDateTime(), nullable=False, default=utcnow)


class AuditEntry(Base):
    """Admin and supervisor actions outside a ticket's own trail (model overrides, user changes)."""

    __tablename__ = "audit_entries"

    id = Column(Integer, primary_key=True)
    actor_user_id = Column(ForeignKey("users.id"))
    action = Column(String(64), nullable=False)
    target = Column(String(128), nullable=False, default="")
    data = Column(JSON, nullable=False, default=dict)
    created_at = Column(UtcDateTime(), nullable=False, default=utcnow)


class ChannelUpdate(Base):
    """An inbound update (a Telegram ``update_id``) already taken for processing: redeliveries are dropped."""

    __tablename__ = "channel_updates"
    __table_args__ = (UniqueConstraint("channel", "update_id", name="uq_channel_updates_channel_update"),)

    id = Column(Integer, primary_key=True)
    channel = Column(_enum(Channel), nullable=False)
    update_id = Column(String(64), nullable=False)
    received_at = Column(UtcDateTime(), nullable=False, default=utcnow, index=True)
