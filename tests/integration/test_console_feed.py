"""The console stream's cursor on a real CRM: a change that commits late is still streamed, and only once."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from router.bootstrap import Kefu
from router.crm.models import Ticket, User, utcnow
from router.web.live import BATCH_LIMIT, COMMIT_OVERLAP, TicketFeed
from tests.support.routing import new_ticket


def _supervisor_id(kefu: Kefu) -> int:
    with kefu.reader() as reader:
        return reader.session.scalar(select(User.id).where(User.username == "supervisor"))


def _open_ticket(kefu: Kefu, sender: str) -> tuple[int, object]:
    with kefu.uow() as uow:
        ticket = new_ticket(uow.session, sender=sender)
        uow.commit()
        return ticket.id, ticket.updated_at


def test_a_ticket_stamped_before_the_newest_seen_but_committed_after_it_is_streamed(seeded: Kefu) -> None:
    first, first_stamp = _open_ticket(seeded, "web:feed-first")
    feed = TicketFeed(seeded, _supervisor_id(seeded), since=first_stamp - timedelta(seconds=1))
    assert [ticket["id"] for ticket in feed.poll()] == [first]

    # Another writer stamped its ticket before the first one but committed only now.
    late, _ = _open_ticket(seeded, "web:feed-late")
    with seeded.uow() as uow:
        uow.session.execute(
            update(Ticket).where(Ticket.id == late).values(updated_at=first_stamp - timedelta(milliseconds=500))
        )
        uow.commit()

    assert [ticket["id"] for ticket in feed.poll()] == [late]
    assert feed.poll() == []


def test_a_ticket_changed_again_is_streamed_in_its_new_version(seeded: Kefu) -> None:
    ticket_id, stamp = _open_ticket(seeded, "web:feed-again")
    feed = TicketFeed(seeded, _supervisor_id(seeded), since=stamp - timedelta(seconds=1))
    first_version = feed.poll()[0]["version"]
    with seeded.uow() as uow:
        uow.session.get(Ticket, ticket_id).subject = "changed"
        uow.commit()
    changed = feed.poll()
    assert [(ticket["id"], ticket["subject"]) for ticket in changed] == [(ticket_id, "changed")]
    assert changed[0]["version"] > first_version


def test_more_tickets_stamped_in_one_instant_than_a_batch_holds_are_all_streamed(seeded: Kefu) -> None:
    # One routing batch stamps every ticket it assigns with the same time; a morning backlog can exceed a batch.
    with seeded.uow() as uow:
        ids = [new_ticket(uow.session, sender=f"web:feed-burst-{n}").id for n in range(BATCH_LIMIT + 50)]
        uow.commit()
    stamp = utcnow() - 2 * COMMIT_OVERLAP
    with seeded.uow() as uow:
        uow.session.execute(update(Ticket).where(Ticket.id.in_(ids)).values(updated_at=stamp))
        uow.commit()
    later, _ = _open_ticket(seeded, "web:feed-after-the-burst")
    feed = TicketFeed(seeded, _supervisor_id(seeded), since=stamp - timedelta(seconds=1))
    streamed = [ticket["id"] for _ in range(4) for ticket in feed.poll()]
    assert sorted(streamed) == sorted([*ids, later])
