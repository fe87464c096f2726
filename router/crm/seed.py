"""The demo organisation: teams, agents, an admin, canned responses and FAQ entries, for an empty CRM."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from router.crm.models import Agent, CannedResponse, FaqEntry, PasswordOrigin, Role, Team, User
from router.crm.passwords import Passwords, generate_password


class DemoLogin(NamedTuple):
    """A demo account and the random password the seed gave it (stored only hashed, shown to the caller once)."""

    username: str
    password: str
    role: str


def _load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def load_categories(data_dir: Path) -> dict[str, Any]:
    """The categories/teams config (``data/triage/categories.yml``)."""
    return _load(data_dir / "triage" / "categories.yml")


def seed_demo(session: Session, passwords: Passwords, data_dir: Path) -> list[DemoLogin]:
    """Fill an empty CRM with the demo organisation and return its logins; none (and no change) if users exist.

    The demo accounts share one password per install: one argon2 hash keeps seeding (which every test fixture
    does) as cheap as it was, the accounts stand for one person trying kefu, and each must choose its own password
    at first login; production refuses to start while any still has it.
    """
    if session.scalar(select(func.count(User.id))):
        return []
    organisation = _load(data_dir / "demo_organisation.yml")
    teams = {
        name: Team(name=name, display_name=f"{labels['zh']} {labels['en']}")
        for name, labels in load_categories(data_dir)["teams"].items()
    }
    session.add_all(teams.values())
    password = generate_password()
    password_hash = passwords.hash(password)
    logins = []
    for person in organisation["users"]:
        login = DemoLogin(person["username"], password, person["role"])
        logins.append(login)
        user = User(
            username=login.username,
            display_name=person["display_name"],
            role=Role(login.role),
            password_hash=password_hash,
            password_origin=PasswordOrigin.demo,
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
    return logins


def seed_faq(session: Session, data_dir: Path) -> int:
    """Load ``data/faq.yml`` into an empty FAQ table; returns how many entries were added."""
    if session.scalar(select(func.count(FaqEntry.id))):
        return 0
    entries = [FaqEntry(**entry) for entry in _load(data_dir / "faq.yml")["faq"]]
    session.add_all(entries)
    return len(entries)
