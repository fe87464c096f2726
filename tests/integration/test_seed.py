"""The demo organisation seeds an empty CRM once, with working logins, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import func, select

from router.bootstrap import Kefu
from router.crm.models import Agent, FaqEntry, Role, Team, User
from router.crm.passwords import verify_password
from router.crm.seed import demo_logins, seed_demo


def test_seed_fills_an_empty_crm_once(kefu_any_db: Kefu) -> None:
    data_dir = kefu_any_db.settings.data_dir
    with kefu_any_db.uow() as uow:
        assert seed_demo(uow.session, data_dir) is True
        uow.commit()
    with kefu_any_db.uow() as uow:
        assert seed_demo(uow.session, data_dir) is False
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
        for username, password, _role in demo_logins(data_dir):
            user = session.execute(select(User).where(User.username == username)).scalar_one()
            assert verify_password(user.password_hash, password)
            assert not verify_password(user.password_hash, password + "x")
