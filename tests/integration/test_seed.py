"""The demo organisation seeds an empty CRM once, with a random demo password, on SQLite and PostgreSQL."""

from __future__ import annotations

from argon2 import extract_parameters
from argon2.profiles import RFC_9106_LOW_MEMORY
from sqlalchemy import func, select

from router.bootstrap import Kefu
from router.crm.models import Agent, FaqEntry, PasswordOrigin, Role, Team, User
from router.crm.passwords import Passwords
from router.crm.seed import seed_demo


def test_seed_fills_an_empty_crm_once_with_a_random_password_stored_hashed(kefu_any_db: Kefu) -> None:
    data_dir = kefu_any_db.settings.data_dir
    # Production's hashing (the only one KEFU_ENV=production accepts), not the tests' cheap one.
    production = Passwords("rfc_9106_low_memory")
    with kefu_any_db.uow() as uow:
        logins = seed_demo(uow.session, production, data_dir)
        uow.commit()
    assert {login.username for login in logins} >= {"admin", "supervisor", "lina"}
    with kefu_any_db.uow() as uow:
        assert seed_demo(uow.session, production, data_dir) == []
        session = uow.session
        assert session.scalar(select(func.count(Team.id))) == 6
        safety = session.execute(select(Team).where(Team.name == "safety")).scalar_one()
        # Product safety has its own team (categories.yml) with agents to take its P1 tickets.
        assert safety.display_name == "产品安全组 Product safety" and len(safety.agents) == 2
        assert session.scalar(select(func.count(FaqEntry.id))) >= 20
        admin = session.execute(select(User).where(User.username == "admin")).scalar_one()
        assert admin.role is Role.admin
        lina = session.execute(select(Agent).join(User).where(User.username == "lina")).scalar_one()
        assert {team.name for team in lina.teams} == {"logistics", "after_sales"}
        stored = set()
        for username, password, role in logins:
            user = session.execute(select(User).where(User.username == username)).scalar_one()
            assert user.role.value == role
            assert user.password_origin is PasswordOrigin.demo and user.must_change_password
            stored.add((user.password_hash, password))
        # Each distinct stored hash checked once: a verification at production strength costs ~0.2 CPU-seconds.
        for password_hash, password in stored:
            assert password not in password_hash and production.verify(password_hash, password)
            # RFC 9106's second recommendation (64 MiB, 3 passes): the tests' own hashes are far cheaper.
            assert extract_parameters(password_hash) == RFC_9106_LOW_MEMORY
            assert not production.verify(password_hash, "kefu-demo")


def test_every_install_gets_its_own_demo_password(kefu: Kefu, tmp_path) -> None:
    from tests.support.crm import make_kefu

    other = make_kefu(f"sqlite:///{tmp_path / 'other.db'}", tmp_path / "other")
    try:
        passwords = []
        for install in (kefu, other):
            with install.uow() as uow:
                passwords.append(seed_demo(uow.session, install.passwords, install.settings.data_dir)[0].password)
                uow.commit()
        assert passwords[0] != passwords[1] and len(passwords[0]) >= 16
    finally:
        other.dispose()
