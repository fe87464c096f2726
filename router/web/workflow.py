"""The ticket actions both the console and the API take: call the routing service, commit, then talk to channels.

Channel I/O happens only after the commit, so a slow Telegram or Rasa never holds a ticket lock, and a failed send
leaves the reply stored (``delivery="failed"``) and visible instead of losing it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from router.bootstrap import Kefu
from router.crm.models import Conversation, TicketEvent
from router.delivery.rasa_api import RasaApi, RasaUnavailable
from router.delivery.service import send_stored_async
from router.errors import Conflict, InvalidInput, NotFound
from router.routing import tickets
from router.web.security import CurrentUser
from router.web.views import acting_user, visible_ticket


@dataclass(frozen=True)
class Outcome:
    """What an action did, for the console's notice and the API's answer."""

    ticket_id: int
    message: str
    delivery: str = ""


async def reply(kefu: Kefu, user: CurrentUser, ticket_id: int, text: str, expected_version: int | None) -> Outcome:
    """Record the agent's reply on the ticket, then deliver it on the customer's channel."""
    with kefu.uow() as uow:
        interaction = tickets.reply(
            uow.session,
            ticket_id=ticket_id,
            actor=acting_user(uow.session, user),
            text=text,
            expected_version=expected_version,
        )
        interaction_id = interaction.id
        uow.commit()
    # The CRM keeps the redacted text; the customer gets what the agent wrote (an order number, a hotline).
    result = await send_stored_async(kefu, interaction_id, text=text.strip())
    message = "已发送 Reply sent" if result.ok else "回复已保存但发送失败 Reply saved, delivery failed"
    return Outcome(ticket_id, message, result.status)


def resolve(kefu: Kefu, user: CurrentUser, ticket_id: int, expected_version: int | None, summary: str = "") -> Outcome:
    """Resolve the ticket, then hand the conversation back to the bot, which asks the CSAT question."""
    with kefu.uow() as uow:
        ticket = tickets.resolve(
            uow.session,
            ticket_id=ticket_id,
            actor=acting_user(uow.session, user),
            expected_version=expected_version,
            summary=summary,
        )
        number = ticket.number
        sender_id = uow.session.scalar(select(Conversation.sender_id).where(Conversation.id == ticket.conversation_id))
        uow.commit()
    if sender_id is None:
        return Outcome(ticket_id, "已解决 Resolved")
    rasa = RasaApi(kefu.settings.rasa_url, timeout_seconds=10, token=kefu.settings.rasa_token)
    try:
        rasa.ask_csat(sender_id, number)
    except RasaUnavailable:
        return Outcome(ticket_id, "已解决，但机器人未能发送满意度调查 Resolved; the bot could not ask for a rating")
    finally:
        rasa.close()
    return Outcome(ticket_id, "已解决，已发送满意度调查 Resolved; the customer was asked for a rating")


def transfer(
    kefu: Kefu,
    user: CurrentUser,
    ticket_id: int,
    to_team: int | None,
    to_agent: int | None,
    expected_version: int | None,
) -> Outcome:
    """Move the ticket to another team's queue or straight to an agent."""
    with kefu.uow() as uow:
        ticket = tickets.transfer(
            uow.session,
            ticket_id=ticket_id,
            actor=acting_user(uow.session, user),
            to_team=to_team,
            to_agent=to_agent,
            expected_version=expected_version,
        )
        message = f"已转接 Transferred to {ticket.team.display_name}"
        uow.commit()
    return Outcome(ticket_id, message)


def reopen(kefu: Kefu, user: CurrentUser, ticket_id: int, expected_version: int | None) -> Outcome:
    """Bring a resolved ticket back to its queue."""
    with kefu.uow() as uow:
        actor = acting_user(uow.session, user)
        ticket = visible_ticket(uow.session, actor, ticket_id)  # the domain's reopen also serves customers: check here
        if expected_version is not None and ticket.version != expected_version:
            raise Conflict(f"ticket {ticket.number} changed since you opened it; reload it")
        tickets.reopen(uow.session, ticket_id=ticket_id, actor=actor, reason="agent")
        uow.commit()
    return Outcome(ticket_id, "已重新打开 Reopened")


def add_note(kefu: Kefu, user: CurrentUser, ticket_id: int, text: str) -> TicketEvent:
    """Add an internal note (never shown to the customer)."""
    with kefu.uow() as uow:
        event = tickets.add_note(uow.session, ticket_id=ticket_id, actor=acting_user(uow.session, user), text=text)
        uow.commit()
    return event


def merge(kefu: Kefu, user: CurrentUser, ticket_id: int, into: str) -> Outcome:
    """Fold this ticket into another of the same customer, given by number (T000123) or id."""
    with kefu.uow() as uow:
        target = tickets.find_ticket(uow.session, into)
        if target is None:
            raise NotFound(f"ticket {into!r} does not exist") if into.strip() else InvalidInput("say which ticket")
        merged = tickets.merge(
            uow.session, source_ticket_id=ticket_id, target_ticket_id=target.id, actor=acting_user(uow.session, user)
        )
        target_id, number = merged.id, merged.number
        uow.commit()
    return Outcome(target_id, f"已合并到 Merged into {number}")
