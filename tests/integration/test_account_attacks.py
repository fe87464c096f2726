"""Attacks on console accounts, each performed over real HTTP against a running web app, and refused.

Forged cookies and tokens, revoked and disabled logins, a first login on someone else's password. The guessing
attacks (throttling) are in ``test_login_throttle.py``; production start-up checks in ``test_production_start.py``.
"""

from __future__ import annotations

import json
import re
from base64 import b64encode
from collections.abc import Iterator

import httpx
import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from router.accounts import users
from router.bootstrap import bootstrap
from router.crm import migrate
from router.crm.models import PasswordOrigin, Role
from router.settings import Settings
from tests.support.crm import give_chosen_password
from tests.support.web import Server, csrf_of, form_login, web_app_in_thread

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
OLD_PUBLISHED_KEY = "kefu-dev-secret-change-me"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The web app over an empty migrated SQLite CRM, with the development key it generates itself."""
    work_dir = tmp_path_factory.mktemp("account-attacks")
    settings = Settings(database_url=f"sqlite:///{work_dir / 'kefu.db'}", var_dir=work_dir / "var")
    kefu = bootstrap(settings)
    migrate.upgrade(kefu.engine)
    try:
        with web_app_in_thread(settings) as base_url:
            yield Server(base_url=base_url, kefu=kefu)
    finally:
        kefu.dispose()


def choose_password(client: httpx.Client, current: str, new: str) -> httpx.Response:
    """Submit the change-password form."""
    token = csrf_of(client, "/account/password")
    fields = {"current_password": current, "new_password": new, "repeat_password": new, "csrf_token": token}
    return client.post("/account/password", data=fields)


def add_user(server: Server, username: str, role: Role = Role.agent) -> str:
    """A new account as ``kefu user add`` makes it; returns the password it was given."""
    with server.kefu.uow() as uow:
        _, password = users.add_user(uow.session, server.kefu.passwords, username, username.title(), role)
        uow.commit()
    return password


def working_user(server: Server, username: str, role: Role = Role.agent) -> tuple[httpx.Client, str]:
    """A new user who has chosen their own password, logged in: their browser client and that password.

    The password is set directly rather than through the form (a login and a password change fewer a user);
    test_first_login_on_someone_elses_password_must_choose_its_own walks the form itself.
    """
    add_user(server, username, role)
    own = f"{username}-own-password-1"
    with server.kefu.uow() as uow:
        give_chosen_password(uow.session, username, own)
        uow.commit()
    client = server.client()
    assert form_login(client, username, own).status_code == 303
    return client, own


def bearer_token(server: Server, username: str, password: str) -> str:
    response = httpx.post(f"{server.base_url}/api/tokens", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return response.json()["token"]


def api_status(server: Server, token: str) -> int:
    return httpx.get(f"{server.base_url}/api/tickets", headers={"Authorization": f"Bearer {token}"}).status_code


def user_id(server: Server, username: str) -> int:
    with server.kefu.uow() as uow:
        return users.get_user(uow.session, username).id


def forged_cookie(secret_key: str, session: dict) -> str:
    """A session cookie as Starlette's SessionMiddleware signs it, made with ``secret_key``."""
    return TimestampSigner(secret_key).sign(b64encode(json.dumps(session).encode())).decode()


def forged_token(secret_key: str, claims: dict) -> str:
    """A bearer token as kefu signs it, made with ``secret_key``."""
    return URLSafeTimedSerializer(secret_key, salt="kefu-api-token").dumps(claims)


def test_cookie_and_token_forged_with_the_old_published_key_are_refused(server: Server) -> None:
    add_user(server, "forge-target", Role.admin)
    target = user_id(server, "forge-target")
    with server.kefu.uow() as uow:  # the target chose a password, so only the signature stands in the way
        user = users.get_user(uow.session, "forge-target")
        user.password_origin = PasswordOrigin.chosen
        uow.commit()
    session = {"user_id": target, "epoch": 0}
    claims = {"uid": target, "tv": 0}

    forged = httpx.get(
        f"{server.base_url}/admin/users", cookies={"kefu_session": forged_cookie(OLD_PUBLISHED_KEY, session)}
    )
    assert forged.status_code == 303 and forged.headers["location"].startswith("/login")
    assert api_status(server, forged_token(OLD_PUBLISHED_KEY, claims)) == 401

    # The same forgeries signed with the key the server really uses get in: the refusal above is the key's doing.
    real_key = (server.kefu.settings.var_dir / "secret_key").read_text().strip()
    assert real_key != OLD_PUBLISHED_KEY and len(real_key) >= 32
    genuine = httpx.get(f"{server.base_url}/admin/users", cookies={"kefu_session": forged_cookie(real_key, session)})
    assert genuine.status_code == 200 and "forge-target" in genuine.text
    assert api_status(server, forged_token(real_key, claims)) == 200


def test_development_key_is_generated_once_private_to_its_owner(server: Server) -> None:
    key_file = server.kefu.settings.var_dir / "secret_key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert server.kefu.secret_key == key_file.read_text().strip()  # a second process reads the same key


def test_first_login_on_someone_elses_password_must_choose_its_own(server: Server) -> None:
    assigned = add_user(server, "newcomer")
    client = server.client()
    login = form_login(client, "newcomer", assigned)
    assert login.status_code == 303 and login.headers["location"].startswith("/account/password")
    console = client.get("/console")
    assert console.status_code == 303 and console.headers["location"].startswith("/account/password")
    api = client.get("/api/tickets", headers={"accept": "application/json"})
    assert api.status_code == 403 and "/account/password" in api.json()["error"]
    refused = httpx.post(f"{server.base_url}/api/tokens", json={"username": "newcomer", "password": assigned})
    assert refused.status_code == 403

    assert choose_password(client, "not-the-password", "newcomer-own-password").status_code == 403
    assert choose_password(client, assigned, "short").status_code == 422
    assert choose_password(client, assigned, "newcomer-own-password").status_code == 303
    assert client.get("/console").status_code == 200
    assert form_login(server.client(), "newcomer", assigned).status_code == 401
    assert api_status(server, bearer_token(server, "newcomer", "newcomer-own-password")) == 200


def test_disabling_a_user_ends_their_session_and_bearer_token(server: Server) -> None:
    admin, _ = working_user(server, "disabler", Role.admin)
    victim, password = working_user(server, "leaver")
    token = bearer_token(server, "leaver", password)
    assert victim.get("/console").status_code == 200 and api_status(server, token) == 200

    disabled = admin.post(
        f"/admin/users/{user_id(server, 'leaver')}/disable", data={"csrf_token": csrf_of(admin, "/admin/users")}
    )
    assert disabled.status_code == 303

    assert victim.get("/console").headers["location"].startswith("/login")
    assert api_status(server, token) == 401
    assert form_login(server.client(), "leaver", password).status_code == 401


def test_admin_form_without_csrf_token_changes_nothing(server: Server) -> None:
    admin, _ = working_user(server, "careful-admin", Role.admin)
    _, password = working_user(server, "kept")
    response = admin.post(f"/admin/users/{user_id(server, 'kept')}/disable", data={})
    assert response.status_code == 403
    assert form_login(server.client(), "kept", password).status_code == 303


def test_revoked_tokens_stop_working_and_new_ones_do(server: Server) -> None:
    browser, password = working_user(server, "integrator")
    first, second = bearer_token(server, "integrator", password), bearer_token(server, "integrator", password)
    revoke = httpx.post(f"{server.base_url}/api/tokens/revoke", headers={"Authorization": f"Bearer {first}"})
    assert revoke.status_code == 204
    assert api_status(server, first) == 401 and api_status(server, second) == 401
    assert browser.get("/console").status_code == 200  # revoking tokens leaves the browser session alone
    assert api_status(server, bearer_token(server, "integrator", password)) == 200


def test_admin_password_reset_ends_the_old_session_and_forces_a_new_choice(server: Server) -> None:
    admin, _ = working_user(server, "resetter", Role.admin)
    victim, old_password = working_user(server, "forgetful")
    token = bearer_token(server, "forgetful", old_password)
    page = admin.post(
        f"/admin/users/{user_id(server, 'forgetful')}/password", data={"csrf_token": csrf_of(admin, "/admin/users")}
    )
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    new_password = re.search(r'id="one-time-password">([^<]+)<', page.text).group(1)
    assert victim.get("/console").headers["location"].startswith("/login")
    assert api_status(server, token) == 401
    assert form_login(server.client(), "forgetful", old_password).status_code == 401
    fresh = server.client()
    assert form_login(fresh, "forgetful", new_password).headers["location"].startswith("/account/password")


def test_changing_your_password_logs_out_your_other_sessions(server: Server) -> None:
    laptop, password = working_user(server, "two-devices")
    phone = server.client()
    assert form_login(phone, "two-devices", password).status_code == 303
    assert choose_password(laptop, password, "two-devices-newer-pass").status_code == 303
    assert laptop.get("/console").status_code == 200
    assert phone.get("/console").headers["location"].startswith("/login")


def test_agents_cannot_reach_the_users_page(server: Server) -> None:
    agent, _ = working_user(server, "curious-agent")
    assert agent.get("/admin/users").status_code == 403
    response = agent.post(
        f"/admin/users/{user_id(server, 'curious-agent')}/role",
        data={"role": "admin", "csrf_token": csrf_of(agent, "/console")},
    )
    assert response.status_code == 403
    with server.kefu.uow() as uow:
        assert users.get_user(uow.session, "curious-agent").role is Role.agent


def test_tokens_from_before_revocation_counters_are_refused(server: Server) -> None:
    # A token in the old format (no token version) was valid 30 days and could not be revoked: no longer accepted.
    working_user(server, "old-integration")
    real_key = (server.kefu.settings.var_dir / "secret_key").read_text().strip()
    assert api_status(server, forged_token(real_key, {"uid": user_id(server, "old-integration")})) == 401


def test_admin_changes_a_role_on_the_users_page_and_a_new_agent_gets_an_agent_profile(server: Server) -> None:
    admin, _ = working_user(server, "role-admin", Role.admin)
    add_user(server, "promoted", Role.supervisor)
    target = user_id(server, "promoted")
    for role in ("agent", "admin"):
        changed = admin.post(
            f"/admin/users/{target}/role", data={"role": role, "csrf_token": csrf_of(admin, "/admin/users")}
        )
        assert changed.status_code == 303
    with server.kefu.uow() as uow:
        promoted = users.get_user(uow.session, "promoted")
        assert promoted.role is Role.admin and promoted.agent is not None
    token = csrf_of(admin, "/admin/users")
    bogus = admin.post(f"/admin/users/{target}/role", data={"role": "root", "csrf_token": token})
    assert bogus.status_code == 422 and "unknown role" in bogus.text
