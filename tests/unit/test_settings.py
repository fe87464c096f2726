"""Settings come from KEFU_* variables with safe defaults, and a bad value is refused up front."""

from __future__ import annotations

import pydantic
import pytest

from router.settings import Settings


def test_defaults_run_locally_on_sqlite(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KEFU_DATABASE_URL", "KEFU_WEB_PORT", "KEFU_RASA_PORT"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(_env_file=None)
    assert settings.database_url.startswith("sqlite:///")
    assert settings.database_url.endswith("var/kefu.db")
    assert (settings.rasa_port, settings.action_port, settings.web_port) == (5005, 5055, 8000)
    assert settings.web_url == "http://127.0.0.1:8000"


def test_passwords_are_hashed_at_production_cost_unless_a_test_suite_says_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("KEFU_PASSWORD_HASH_PROFILE", raising=False)
    assert Settings(_env_file=None).password_hash_profile == "rfc_9106_low_memory"
    assert Settings(_env_file=None, password_hash_profile="cheapest").password_hash_profile == "cheapest"
    with pytest.raises(pydantic.ValidationError, match="cheapest is for tests"):
        Settings(_env_file=None, env="production", password_hash_profile="cheapest")


def test_environment_overrides_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEFU_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/kefu")
    monkeypatch.setenv("KEFU_WEB_PORT", "8123")
    monkeypatch.setenv("KEFU_PUBLIC_URL", "https://support.example.com/")
    settings = Settings(_env_file=None)
    assert settings.database_url == "postgresql://postgres@127.0.0.1:5432/kefu"
    assert settings.web_port == 8123
    assert settings.web_url == "https://support.example.com"


def test_dotenv_file_is_read(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KEFU_RASA_PORT", raising=False)
    env_file = tmp_path / ".env"
    env_file.write_text("KEFU_RASA_PORT=5999\n")
    assert Settings(_env_file=env_file).rasa_port == 5999


@pytest.mark.parametrize(("name", "value"), [("KEFU_DATABASE_URL", "kefu.db"), ("KEFU_WEB_PORT", "eighty")])
def test_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(pydantic.ValidationError):
        Settings(_env_file=None)


def test_the_sites_that_may_frame_the_web_chat(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KEFU_WEBCHAT_EMBED_ORIGINS", raising=False)
    assert Settings(_env_file=None).webchat_embedders == ("*",)  # development: try the widget on any page
    production = {"env": "production", "password_hash_profile": "rfc_9106_low_memory"}
    assert Settings(_env_file=None, **production).webchat_embedders == ()  # production: only where listed
    monkeypatch.setenv("KEFU_WEBCHAT_EMBED_ORIGINS", " https://shop.example/ , http://127.0.0.1:8080,")
    listed = Settings(_env_file=None, **production)
    assert listed.webchat_embedders == ("https://shop.example", "http://127.0.0.1:8080")
    monkeypatch.setenv("KEFU_WEBCHAT_EMBED_ORIGINS", "")
    assert Settings(_env_file=None).webchat_embedders == ()


@pytest.mark.parametrize(
    "value", ["shop.example", "https://shop.example/chat", "javascript:alert(1)", "https://shop.example?x=1", "'none'"]
)
def test_an_embedding_site_that_is_not_an_origin_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("KEFU_WEBCHAT_EMBED_ORIGINS", f"https://ok.example,{value}")
    with pytest.raises(pydantic.ValidationError, match=r"is not an origin such as https://shop\.example"):
        Settings(_env_file=None)
