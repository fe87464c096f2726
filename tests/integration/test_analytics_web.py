"""Analytics pages over real HTTP: who may see them, what they show, exports, and bad input."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path

import matplotlib.image
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from router.analytics.demo_data import generate_history
from router.bootstrap import Kefu
from router.crm.models import Team, Ticket
from router.web.app import create_app
from tests.support.crm import DEMO_PASSWORD, make_kefu, seed_demo_with_chosen_passwords

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
ANALYSES = ("kpis", "topics", "csat_drivers", "segments", "rules", "staffing")


@pytest.fixture(scope="module")
def crm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kefu]:
    """A SQLite CRM with a small demo history."""
    tmp_path = tmp_path_factory.mktemp("analytics-web")
    kefu = make_kefu(f"sqlite:///{tmp_path / 'kefu.db'}", tmp_path)
    with kefu.uow() as uow:
        seed_demo_with_chosen_passwords(uow.session, kefu.settings.data_dir)
        generate_history(uow.session, kefu.passwords, kefu.settings.data_dir, customers=120, days=60, seed=5)
        uow.commit()
    yield kefu
    kefu.dispose()


def _client(kefu: Kefu, username: str) -> TestClient:
    client = TestClient(create_app(kefu))
    token = CSRF_FIELD.search(client.get("/login").text).group(1)
    response = client.post(
        "/login", data={"username": username, "password": DEMO_PASSWORD, "csrf_token": token}, follow_redirects=False
    )
    assert response.status_code == 303
    return client


def test_only_supervisors_and_admins_see_analytics(crm: Kefu) -> None:
    anonymous = TestClient(create_app(crm))
    assert anonymous.get("/analytics/kpis", follow_redirects=False).headers["location"].startswith("/login")
    agent = _client(crm, "lina")
    assert agent.get("/analytics/kpis").status_code == 403
    assert agent.get("/analytics/kpis.csv").status_code == 403
    assert agent.get("/analytics/topics.png").status_code == 403
    assert _client(crm, "admin").get("/analytics/kpis").status_code == 200


def test_every_analysis_page_shows_its_chart_tables_and_export_links(crm: Kefu) -> None:
    client = _client(crm, "supervisor")
    assert client.get("/analytics", follow_redirects=False).headers["location"] == "/analytics/kpis"
    for name in ANALYSES:
        page = client.get(f"/analytics/{name}?days=60")
        assert page.status_code == 200, (name, page.text[:500])
        assert 'id="chart" src="data:image/png;base64,' in page.text
        assert (
            f'href="/analytics/{name}.csv?days=60"' in page.text
            and f'href="/analytics/{name}.png?days=60"' in page.text
        )
        assert '<table id="main-table">' in page.text, name
    topics = client.get("/analytics/topics?days=60").text
    assert "快递" in topics and "courier" in topics


def test_csv_export_is_utf8_with_bom_and_matches_the_table(crm: Kefu) -> None:
    client = _client(crm, "supervisor")
    response = client.get("/analytics/kpis.csv?days=60")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text[1:])))
    assert {row["team"] for row in rows} >= {"bot", "logistics", "after_sales"}
    channels = list(csv.DictReader(io.StringIO(client.get("/analytics/kpis.csv?days=60&table=2").text[1:])))
    assert {row["channel"] for row in channels} == {"web", "telegram", "rest"}
    assert client.get("/analytics/kpis.csv?days=60&table=9").status_code == 404


def test_png_export_is_a_real_image(crm: Kefu, tmp_path: Path) -> None:
    client = _client(crm, "supervisor")
    response = client.get("/analytics/csat_drivers.png?days=60")
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    image = matplotlib.image.imread(io.BytesIO(response.content), format="png")
    assert image.shape[0] > 200 and image.shape[1] > 400
    assert image[:, :, :3].std() > 0.05  # not a blank canvas


def test_bad_input_gets_a_clear_error(crm: Kefu) -> None:
    client = _client(crm, "supervisor")
    assert client.get("/analytics/nonsense").status_code == 404
    assert client.get("/analytics/nonsense.csv").status_code == 404
    for days in ("0", "-3", "99999", "abc", "1e9"):
        response = client.get(f"/analytics/kpis?days={days}")
        assert response.status_code == 422 and "days" in response.text
    quiet = client.get("/analytics/csat_drivers?days=1")
    assert quiet.status_code == 200 and ("rated tickets" in quiet.text or "main-table" in quiet.text)


def test_similar_tickets_api_for_the_agent_console(crm: Kefu) -> None:
    with crm.uow() as uow:
        latest = select(Ticket).join(Team).order_by(Ticket.created_at.desc())
        ticket = uow.session.scalars(latest.where(Team.name == "logistics")).first()  # one of lina's teams
        ticket_id, category = ticket.id, ticket.category
        other_team_ticket = uow.session.scalars(latest.where(Team.name == "billing")).first().id
    client = _client(crm, "lina")
    found = client.get(f"/api/tickets/{ticket_id}/similar?k=3")
    assert found.status_code == 200
    body = found.json()
    assert 1 <= len(body) <= 3 and body[0]["category"] == category and body[0]["resolution"]
    assert client.get("/api/tickets/999999/similar").json()["status"] == 404
    assert client.get(f"/api/tickets/{other_team_ticket}/similar").status_code == 403
    assert client.get(f"/api/tickets/{ticket_id}/similar?k=500").status_code == 422
    assert TestClient(create_app(crm)).get(f"/api/tickets/{ticket_id}/similar").status_code == 401
