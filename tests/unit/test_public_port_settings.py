"""The settings behind the one public port: loopback hosts, URLs derived from them, tokens never constant."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest
import yaml

from bot.action_server import create_action_app
from bot.server import rasa_run_arguments
from router.internal_tokens import TOKENS_FILE, with_internal_tokens
from router.runner import channel_credentials, process_environment, write_endpoints
from router.settings import Settings

INTERNAL = ("KEFU_RASA_HOST", "KEFU_RASA_URL", "KEFU_ACTION_HOST", "KEFU_ACTION_URL", "KEFU_RASA_TOKEN")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*INTERNAL, "KEFU_ACTION_TOKEN", "KEFU_ENV", "KEFU_REST_CHANNEL", "KEFU_PASSWORD_HASH_PROFILE"):
        monkeypatch.delenv(name, raising=False)


def test_rasa_and_the_action_server_are_reached_on_loopback_by_default() -> None:
    settings = Settings(_env_file=None)
    assert settings.rasa_url == "http://127.0.0.1:5005"
    assert settings.action_url == "http://127.0.0.1:5055/webhook"


def test_private_hosts_make_the_urls_unless_a_url_is_given() -> None:
    settings = Settings(_env_file=None, rasa_host="10.0.0.5", rasa_port=6000, action_host="10.0.0.6")
    assert (settings.rasa_url, settings.action_url) == ("http://10.0.0.5:6000", "http://10.0.0.6:5055/webhook")
    assert Settings(_env_file=None, rasa_url="http://rasa.internal:80").rasa_url == "http://rasa.internal:80"


@pytest.mark.parametrize(
    ("env", "rest_channel", "enabled"),
    [
        ("development", None, True),
        ("production", None, False),
        ("production", True, True),
        ("development", False, False),
    ],
)
def test_the_rest_channel_is_a_development_tool(env: str, rest_channel: bool | None, enabled: bool) -> None:
    settings = Settings(_env_file=None, env=env, rest_channel=rest_channel)
    assert settings.rest_channel_enabled is enabled
    channels = channel_credentials(settings)
    assert ("rest" in channels) is enabled
    assert {"bot.channels.webchat.WebchatInput", "bot.channels.telegram.TelegramInput"} <= set(channels)


def test_development_makes_random_tokens_once_into_var(tmp_path: Path) -> None:
    settings = with_internal_tokens(Settings(_env_file=None, var_dir=tmp_path / "a"))
    assert len(settings.rasa_token) >= 32 and len(settings.action_token) >= 32
    assert settings.rasa_token != settings.action_token
    assert stat.S_IMODE((tmp_path / "a" / TOKENS_FILE).stat().st_mode) == 0o600
    again = with_internal_tokens(Settings(_env_file=None, var_dir=tmp_path / "a"))
    assert (again.rasa_token, again.action_token) == (settings.rasa_token, settings.action_token)
    elsewhere = with_internal_tokens(Settings(_env_file=None, var_dir=tmp_path / "b"))
    assert elsewhere.rasa_token != settings.rasa_token
    chosen = with_internal_tokens(Settings(_env_file=None, var_dir=tmp_path / "a", rasa_token="set-by-hand"))
    assert chosen.rasa_token == "set-by-hand" and chosen.action_token == settings.action_token


def test_production_tokens_are_never_made_up(tmp_path: Path) -> None:
    settings = with_internal_tokens(Settings(_env_file=None, env="production", var_dir=tmp_path))
    assert (settings.rasa_token, settings.action_token) == ("", "")
    assert not (tmp_path / TOKENS_FILE).exists()
    with pytest.raises(SystemExit, match="KEFU_RASA_TOKEN"):
        rasa_run_arguments(settings, [])


def test_rasa_runs_on_loopback_with_the_token_and_no_cors() -> None:
    arguments = rasa_run_arguments(Settings(_env_file=None, rasa_token="t0ken"), ["--model", "m.tar.gz"])
    assert arguments[:2] == ["run", "--enable-api"]
    assert arguments[arguments.index("--interface") + 1] == "127.0.0.1"
    assert "--auth-token=t0ken" in arguments
    assert "--cors" not in arguments and arguments[-2:] == ["--model", "m.tar.gz"]


def test_a_token_that_starts_with_a_dash_reaches_rasa_as_the_token() -> None:
    from rasa.__main__ import create_argument_parser

    arguments = rasa_run_arguments(Settings(_env_file=None, rasa_token="-lztAgU0G70SI07JNpe41"), ["--model", "m"])
    parsed = create_argument_parser().parse_args(arguments)
    assert parsed.auth_token == "-lztAgU0G70SI07JNpe41"


def test_kefu_run_hands_every_process_the_tokens_and_rasa_the_action_token(tmp_path: Path) -> None:
    settings = with_internal_tokens(Settings(_env_file=None, var_dir=tmp_path))
    env = process_environment(settings)
    assert (env["KEFU_RASA_TOKEN"], env["KEFU_ACTION_TOKEN"]) == (settings.rasa_token, settings.action_token)
    endpoints = write_endpoints(settings)
    assert stat.S_IMODE(endpoints.stat().st_mode) == 0o600
    action = yaml.safe_load(endpoints.read_text())["action_endpoint"]
    assert action == {"url": "http://127.0.0.1:5055/webhook", "token": settings.action_token}
    assert "rest" in yaml.safe_load(Path(env["KEFU_CREDENTIALS"]).read_text())


def test_rasa_keeps_conversations_in_the_sqlite_file_and_locks_in_memory_unless_told_otherwise(tmp_path: Path) -> None:
    laptop = yaml.safe_load(write_endpoints(Settings(_env_file=None, var_dir=tmp_path)).read_text())
    assert laptop["tracker_store"] == {
        "type": "bot.tracker_store.KefuTrackerStore",
        "dialect": "sqlite",
        "db": str(tmp_path / "rasa_tracker.db"),
    }
    assert "lock_store" not in laptop
    cluster = Settings(
        _env_file=None,
        var_dir=tmp_path,
        tracker_store_url="postgresql://rasa:s%40cret@db.internal:5433/tracker",
        redis_url="rediss://:p%2Fss@cache.internal:6380/3",
    )
    endpoints = yaml.safe_load(write_endpoints(cluster).read_text())
    assert endpoints["tracker_store"] == {
        "type": "bot.tracker_store.KefuTrackerStore",
        "dialect": "postgresql",
        "url": "postgresql://rasa:s%40cret@db.internal:5433/tracker",
    }
    assert endpoints["lock_store"] == {
        "type": "bot.lock_store.AtomicRedisLockStore",
        "url": "cache.internal",
        "port": 6380,
        "db": 3,
        "key_prefix": "kefu",
        "use_ssl": True,
        "password": "p/ss",
    }


@pytest.mark.parametrize(("field", "value"), [("tracker_store_url", "var/tracker.db"), ("redis_url", "127.0.0.1:6379")])
def test_an_engine_address_that_is_not_a_url_is_refused_with_an_example(field: str, value: str) -> None:
    with pytest.raises(ValueError, match="such as"):
        Settings(_env_file=None, **{field: value})


def test_the_action_server_refuses_to_start_without_its_token() -> None:
    with pytest.raises(SystemExit, match="KEFU_ACTION_TOKEN"):
        create_action_app("")


def test_every_procfile_variable_is_a_setting() -> None:
    procfile = (Settings(_env_file=None).project_dir / "Procfile").read_text(encoding="utf-8")
    variables = set(re.findall(r"\$KEFU_([A-Z_]+)", procfile))
    assert variables, "the Procfile names no KEFU_ variable any more: drop this test"
    assert {name.lower() for name in variables} <= set(Settings.__fields__)


def test_rasas_files_default_to_what_kefu_run_writes_unless_set(tmp_path: Path) -> None:
    settings = with_internal_tokens(Settings(_env_file=None, var_dir=tmp_path / "var", models_dir=tmp_path / "m"))
    env = process_environment(settings)
    assert env["KEFU_NLU_MODEL"] == str(tmp_path / "m" / "nlu" / "active.tar.gz")
    assert env["KEFU_ENDPOINTS"] == str(tmp_path / "var" / "endpoints.yml")
    assert env["KEFU_CREDENTIALS"] == str(tmp_path / "var" / "credentials.yml")

    own = tmp_path / "own-endpoints.yml"
    own.write_text("action_endpoint:\n  url: http://actions.internal:5055/webhook\n", encoding="utf-8")
    chosen = Settings(_env_file=None, var_dir=tmp_path / "v2", endpoints=own, nlu_model=tmp_path / "pinned.tar.gz")
    env = process_environment(with_internal_tokens(chosen))
    assert (env["KEFU_ENDPOINTS"], env["KEFU_NLU_MODEL"]) == (str(own), str(tmp_path / "pinned.tar.gz"))
    assert "actions.internal" in own.read_text(encoding="utf-8"), "a file set by hand is used as it is"
    assert not (tmp_path / "v2" / "endpoints.yml").exists()
