"""The review inbox: customer turns the bot probably misunderstood, grouped by similar text so one label fixes many."""

from __future__ import annotations

import itertools
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from sklearn.cluster import AgglomerativeClustering
from sklearn.feature_extraction.text import TfidfVectorizer
from sqlalchemy import select
from sqlalchemy.orm import Session

from router.crm.models import Interaction, Speaker, TrainingExample

FALLBACK_INTENTS = ("nlu_fallback",)
# How many recent turns the inbox looks at: enough for weeks of review, small enough to cluster in a second.
MAX_CANDIDATE_TURNS = 3000
# Texts at least this similar (TF-IDF cosine over character n-grams, which works for Chinese and English) share a group.
DEFAULT_SIMILARITY = 0.5
_SPACES = re.compile(r"\s+")


@dataclass
class InboxTurn:
    """One customer turn waiting for review, and why it is here."""

    interaction_id: int
    text: str
    intent: str | None
    confidence: float | None
    created_at: datetime
    reasons: list[str]


@dataclass
class InboxGroup:
    """Similar turns an admin labels in one go; the most frequent text represents them."""

    representative: str
    turns: list[InboxTurn] = field(default_factory=list)

    @property
    def size(self) -> int:
        """How many turns one label here would fix."""
        return len(self.turns)

    @property
    def latest_at(self) -> datetime:
        """When a customer last said something like this."""
        return max(turn.created_at for turn in self.turns)

    @property
    def reasons(self) -> list[str]:
        """Why these turns need review (low confidence, fallback, agent correction)."""
        return sorted({reason for turn in self.turns for reason in turn.reasons})

    @property
    def predicted_intents(self) -> list[str]:
        """What the bot thought these turns meant, most common first."""
        counts: dict[str, int] = defaultdict(int)
        for turn in self.turns:
            counts[turn.intent or "none"] += 1
        return sorted(counts, key=lambda intent: -counts[intent])

    @property
    def interaction_ids(self) -> list[int]:
        """The turns a label on this group applies to."""
        return [turn.interaction_id for turn in self.turns]


def normalise(text: str) -> str:
    """The form two turns must share to count as the same text (case and spacing ignored)."""
    return _SPACES.sub(" ", text.strip().lower())


def _agent_followed(session: Session, turns: list[Interaction]) -> set[int]:
    """Customer turns an agent answered next: the bot's handling was taken over and corrected by a person."""
    conversation_ids = {turn.conversation_id for turn in turns}
    if not conversation_ids:
        return set()
    rows = session.execute(
        select(Interaction.id, Interaction.conversation_id, Interaction.speaker)
        .where(Interaction.conversation_id.in_(conversation_ids), Interaction.speaker != Speaker.bot)
        .order_by(Interaction.conversation_id, Interaction.created_at, Interaction.id)
    ).all()
    followed: set[int] = set()
    for current, following in itertools.pairwise(rows):
        same_conversation = current.conversation_id == following.conversation_id
        if same_conversation and current.speaker is Speaker.customer and following.speaker is Speaker.agent:
            followed.add(current.id)
    return followed


def pending_turns(session: Session, confidence_threshold: float) -> list[InboxTurn]:
    """Unlabelled customer turns with low confidence, a fallback, or an agent stepping in, newest first."""
    labelled = select(TrainingExample.interaction_id).where(TrainingExample.interaction_id.is_not(None))
    recent = (
        session.execute(
            select(Interaction)
            .where(
                Interaction.speaker == Speaker.customer,
                Interaction.text != "",
                Interaction.id.not_in(labelled),
            )
            .order_by(Interaction.created_at.desc(), Interaction.id.desc())
            .limit(MAX_CANDIDATE_TURNS)
        )
        .scalars()
        .all()
    )
    followed = _agent_followed(session, recent)
    pending = []
    for turn in recent:
        reasons = []
        if turn.intent is None or turn.intent in FALLBACK_INTENTS:
            reasons.append("fallback")
        elif turn.confidence is not None and turn.confidence < confidence_threshold:
            reasons.append("low_confidence")
        if turn.id in followed:
            reasons.append("agent_corrected")
        if reasons:
            pending.append(InboxTurn(turn.id, turn.text, turn.intent, turn.confidence, turn.created_at, reasons))
    return pending


def group_turns(turns: list[InboxTurn], similarity: float = DEFAULT_SIMILARITY) -> list[InboxGroup]:
    """Cluster turns by TF-IDF cosine similarity; biggest groups first, then the most recent."""
    by_text: dict[str, list[InboxTurn]] = defaultdict(list)
    for turn in turns:
        by_text[normalise(turn.text)].append(turn)
    texts = list(by_text)
    if len(texts) < 2:
        labels = np.zeros(len(texts), dtype=int)
    else:
        vectors = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True).fit_transform(texts)
        labels = AgglomerativeClustering(
            n_clusters=None, distance_threshold=1.0 - similarity, affinity="cosine", linkage="average"
        ).fit_predict(vectors.toarray())
    clusters: dict[int, list[str]] = defaultdict(list)
    for text, label in zip(texts, labels, strict=True):
        clusters[int(label)].append(text)
    groups = []
    for members in clusters.values():
        members.sort(key=lambda text: -len(by_text[text]))
        members_turns = [turn for text in members for turn in by_text[text]]
        members_turns.sort(key=lambda turn: turn.created_at, reverse=True)
        groups.append(InboxGroup(representative=by_text[members[0]][0].text, turns=members_turns))
    groups.sort(key=lambda group: (group.size, group.latest_at), reverse=True)
    return groups


def review_inbox(
    session: Session, confidence_threshold: float, similarity: float = DEFAULT_SIMILARITY
) -> list[InboxGroup]:
    """What admins should label next: grouped pending turns, most frequent and newest first."""
    return group_turns(pending_turns(session, confidence_threshold), similarity)
