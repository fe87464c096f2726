"""The demo organisation: teams, agents, an admin, canned responses and FAQ entries, for an empty CRM."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from router.crm.models import Agent, CannedResponse, FaqEntry, Role, Team, User
from router.crm.passwords import hash_password


def _load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def load_categories(data_dir: Path) -> dict[str, Any]:
    """The categories/teams config (``data/triage/categories.yml``)."""
    return _load(data_dir / "triage" / "categories.yml")


def seed_demo(session: Session, data_dir: Path) -> bool:
    """Fill an empty CRM with the demo organisation; returns False (and changes nothing) if users exist."""
    if session.scalar(select(func.count(User.id))):
        return False
    organisation = _load(data_dir / "demo_organisation.yml")
    teams = {
        name: Team(name=name, display_name=f"{labels['zh']} {labels['en']}")
        for name, labels in load_categories(data_dir)["teams"].items()
    }
    session.add_all(teams.values())
    password_hash = hash_password(organisation["password"])
    for person in organisation["users"]:
        user = User(
            username=person["username"],
            display_name=person["display_name"],
            role=Role(person["role"]),
            password_hash=password_hash,
        )
        session.add(user)
        if person["role"] == Role.agent.value:
            session.add(
                Agent(
                    user=user,
                    capacity=person.get("capacity", 5),
                    languages=person.get("languages", ["zh", "en"]),
                    skills=person.get("skills", []),
                    teams=[teams[name] for name in person.get("teams", [])],
                )
            )
    session.add_all(CannedResponse(**response) for response in organisation.get("canned_responses", []))
    seed_faq(session, data_dir)
    session.flush()
    return True


def seed_faq(session: Session, data_dir: Path) -> int:
    """Load ``data/faq.yml`` into an empty FAQ table; returns how many entries were added."""
    if session.scalar(select(func.count(FaqEntry.id))):
        return 0
    entries = [FaqEntry(**entry) for entry in _load(data_dir / "faq.yml")["faq"]]
    session.add_all(entries)
    return len(entries)


def demo_logins(data_dir: Path) -> list[tuple[str, str, str]]:
    """(username, password, role) of every demo login, for ``kefu run`` to print."""
    organisation = _load(data_dir / "demo_organisation.yml")
    return [(person["username"], organisation["password"], person["role"]) for person in organisation["users"]]
