"""Association rules (Apriori) between complaint categories, products and outcomes of resolved tickets."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from mlxtend.frequent_patterns import apriori, association_rules
from mlxtend.preprocessing import TransactionEncoder
from sqlalchemy import select
from sqlalchemy.orm import Session

from router.analytics import frames
from router.analytics.period import Period
from router.crm.models import Interaction, Speaker

# Rules describe outcomes, so the right-hand side is always an outcome or a CSAT band.
CONSEQUENT_PREFIXES = ("outcome=", "csat=")
MAX_RULES = 50
# A rule resting on a handful of tickets is noise in a small period, whatever its support fraction says.
MIN_RULE_TICKETS = 10


@dataclass(frozen=True)
class Rule:
    """If a ticket has every item of ``antecedent``, it tends to have ``consequent``."""

    antecedent: tuple[str, ...]
    consequent: tuple[str, ...]
    support: float
    confidence: float
    lift: float

    @property
    def text(self) -> str:
        """The rule as a supervisor reads it."""
        return f"{' & '.join(self.antecedent)} → {' & '.join(self.consequent)}"


def _products(session: Session, conversation_ids: list[int]) -> dict[int, str]:
    """The product entity the customer named in each conversation, when they named one."""
    products: dict[int, str] = {}
    for start in range(0, len(conversation_ids), 500):
        rows = session.execute(
            select(Interaction.conversation_id, Interaction.entities).where(
                Interaction.conversation_id.in_(conversation_ids[start : start + 500]),
                Interaction.speaker == Speaker.customer,
            )
        )
        for conversation_id, entities in rows:
            for entity in entities or []:
                if isinstance(entity, dict) and entity.get("entity") == "product" and entity.get("value"):
                    products.setdefault(conversation_id, str(entity["value"]))
    return products


def ticket_transactions(session: Session, period: Period) -> list[list[str]]:
    """One item set per resolved ticket of ``period``: category, product, outcome and CSAT band."""
    tickets = frames.tickets(session, period)
    tickets = tickets[tickets["resolved_at"].notna()]
    products = _products(session, [int(i) for i in tickets["conversation_id"].dropna()])
    transactions = []
    for row in tickets.itertuples():
        items = [f"category={row.category}", f"priority=P{row.priority}"]
        if row.conversation_id in products:
            items.append(f"product={products[row.conversation_id]}")
        if row.reopen_count > 0:
            items.append("outcome=reopened")
        elif row.transfer_count > 0:
            items.append("outcome=transferred")
        else:
            items.append("outcome=resolved_first_time")
        if pd.notna(row.csat):
            items.append("csat=low" if row.csat <= 2 else "csat=high" if row.csat >= 4 else "csat=neutral")
        transactions.append(items)
    return transactions


def mine_rules(transactions: list[list[str]], min_support: float = 0.02, min_confidence: float = 0.5) -> list[Rule]:
    """Apriori frequent item sets, then rules whose consequent is an outcome, strongest lift first."""
    if len(transactions) < 10:
        return []
    min_support = max(min_support, MIN_RULE_TICKETS / len(transactions))
    encoder = TransactionEncoder()
    onehot = pd.DataFrame(encoder.fit(transactions).transform(transactions), columns=encoder.columns_)
    itemsets = apriori(onehot, min_support=min_support, use_colnames=True, max_len=4)
    if itemsets.empty:
        return []
    table = association_rules(itemsets, metric="confidence", min_threshold=min_confidence)
    rules = [
        Rule(
            tuple(sorted(row.antecedents)),
            tuple(sorted(row.consequents)),
            round(float(row.support), 4),
            round(float(row.confidence), 4),
            round(float(row.lift), 3),
        )
        for row in table.itertuples()
        if all(item.startswith(CONSEQUENT_PREFIXES) for item in row.consequents)
        and not any(item.startswith(CONSEQUENT_PREFIXES) for item in row.antecedents)
    ]
    rules.sort(key=lambda rule: (rule.lift, rule.confidence), reverse=True)
    return [rule for rule in rules if rule.lift > 1.0][:MAX_RULES]


def rule_report(session: Session, period: Period, min_support: float = 0.02, min_confidence: float = 0.5) -> list[Rule]:
    """The association rules of the resolved tickets created in ``period``."""
    if not 0 < min_support < 1 or not 0 < min_confidence < 1:
        raise ValueError("min_support and min_confidence must be between 0 and 1")
    return mine_rules(ticket_transactions(session, period), min_support, min_confidence)
