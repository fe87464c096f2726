"""The one typed settings object, read from ``KEFU_*`` environment variables (and an optional ``.env``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from pydantic import BaseSettings, Field, root_validator, validator
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from router.internal_tokens import with_internal_tokens

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# argon2-cffi's profiles (router/crm/passwords.py): RFC 9106's low-memory recommendation, and its cheapest for tests.
PasswordHashProfile = Literal["rfc_9106_low_memory", "cheapest"]


class Settings(BaseSettings):
    """Everything a kefu process may be configured with; every field has a safe local default."""

    database_url: str = Field(
        f"sqlite:///{PROJECT_ROOT / 'var' / 'kefu.db'}",
        description="SQLAlchemy URL of the CRM database (SQLite file by default, PostgreSQL by URL).",
    )
    env: Literal["development", "production"] = "development"
    web_host: str = "127.0.0.1"
    web_port: int = 8000
    rasa_host: str = Field("127.0.0.1", description="Where Rasa listens: loopback, or a private address.")
    rasa_port: int = 5005
    action_host: str = Field("127.0.0.1", description="Where the action server listens (loopback or private).")
    action_port: int = 5055
    rasa_url: str = Field("", description="How kefu reaches Rasa; defaults to the Rasa host and port.")
    action_url: str = Field("", description="Rasa's action endpoint; defaults to the action host and port.")
    rasa_token: str = Field("", description="Rasa's --auth-token: every call to Rasa's API and channels sends it.")
    action_token: str = Field("", description="Rasa sends it with every action call; the action server checks it.")
    rest_channel: bool | None = Field(
        None, description="Rasa's plain REST channel (loopback only); default: on in development, off in production."
    )
    public_url: str = Field("", description="URL customers and agents use; defaults to the web host/port.")
    secret_key: str = Field(
        "",
        description="Signs sessions and API tokens; required (and checked for strength) when KEFU_ENV=production. "
        "Development without one generates a random key once into var/.",
    )
    api_token_hours: int = Field(24, ge=1, le=24 * 90, description="Lifetime of a bearer token from POST /api/tokens.")
    login_failures_per_account: int = Field(
        10, ge=1, description="Failed logins to one account within the lockout window before it is locked."
    )
    login_failures_per_ip: int = Field(
        50, ge=1, description="Failed logins from one IP address within the lockout window before it is locked out."
    )
    login_lockout_minutes: int = Field(15, ge=1, description="How long the failed-login window and a lockout last.")
    password_hash_profile: PasswordHashProfile = Field(
        "rfc_9106_low_memory",
        description="The argon2id cost of new console password hashes: rfc_9106_low_memory (64 MiB, 3 passes, "
        "about 0.3 CPU-seconds a hash) or cheapest, for test suites only (refused when KEFU_ENV=production). Stored "
        "hashes are checked by the parameters they carry, whatever this says.",
    )
    project_dir: Path = PROJECT_ROOT
    models_dir: Path = PROJECT_ROOT / "models"
    # The three files the Procfile hands Rasa.
    nlu_model: Path | None = Field(None, description="The model Rasa starts with; default: models_dir's active one.")
    endpoints: Path | None = Field(
        None, description="Rasa's endpoints file; by default `kefu run` writes one into var/ from these settings."
    )
    credentials: Path | None = Field(
        None, description="Rasa's channels file; by default `kefu run` writes one into var/ from credentials.yml."
    )
    data_dir: Path = PROJECT_ROOT / "data"
    var_dir: Path = PROJECT_ROOT / "var"
    shared_data_dir: Path = Field(
        PROJECT_ROOT.parent / "shared" / "data",
        description="Read-only public data sets (zh_shopping trains the Chinese sentiment model when present).",
    )
    telegram_token: str = ""
    telegram_secret_token: str = Field("", description="Checked on every Telegram webhook request.")
    telegram_api_url: str = Field("https://api.telegram.org/bot", description="Bot API base URL.")
    review_confidence_threshold: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="Customer turns understood with less NLU confidence than this go to the admins' review inbox.",
    )
    gate_tolerance: float = Field(
        0.02,
        ge=0.0,
        le=1.0,
        description="How far a retrained model's held-back accuracy or macro-F1 may fall below the active one's.",
    )
    faq_similarity_threshold: float = 0.35
    redis_url: str = Field(
        "",
        description="Redis that web app processes share flood limits in and Rasa processes their per-conversation "
        "lock (Rasa's RedisLockStore); empty: each process on its own.",
    )
    tracker_store_url: str = Field(
        "",
        description="SQLAlchemy URL of Rasa's tracker store, e.g. PostgreSQL that several Rasa processes share; "
        "empty: the SQLite file var/rasa_tracker.db.",
    )
    rabbitmq_url: str = Field(
        "",
        description="RabbitMQ (amqp:// or amqps://, with user and password) that carries Rasa's events to the CRM: "
        "Rasa's Pika event broker publishes them to a durable queue and `kefu turns consume` writes their turns; "
        "empty: each Rasa writes its own turns (bot/event_broker.py). The queue holds the customers' raw text, so "
        "RabbitMQ must stay on the internal network.",
    )
    rabbitmq_queue: str = Field(
        "kefu.turns",
        min_length=1,
        max_length=200,
        description="The durable queue (and Rasa's fanout exchange) of the turn stream; '<name>.dead' keeps the "
        "messages that are not Rasa events. Another name lets several kefu share one RabbitMQ virtual host.",
    )
    model_server: bool = Field(
        False,
        description="Rasa servers pull the active model from the web app's model server (`models:` in the endpoints "
        "`kefu run` writes; the bytes come from the CRM), so a promotion reaches every Rasa process; off: the one "
        "Rasa at KEFU_RASA_URL is sent `PUT /model`.",
    )
    model_pull_seconds: int = Field(
        5,
        ge=1,
        description="With KEFU_MODEL_SERVER, how often each Rasa server asks whether the model changed (a 304 costs "
        "one indexed query); a promotion reaches every Rasa within this plus its load time.",
    )
    model_server_url: str = Field(
        "",
        description="With KEFU_MODEL_SERVER, where Rasa pulls the model (the web app's /internal/models/nlu); "
        "default: the web app on this machine.",
    )
    trusted_proxies: str = Field(
        "127.0.0.1", description="Comma-separated proxy addresses or networks whose X-Forwarded-For/-Proto count."
    )
    webchat_embed_origins: str | None = Field(
        None,
        description="Comma-separated origins (https://shop.example) of the sites whose pages may show the web chat in "
        "a frame, as the script-tag widget does; * allows any site, an empty value none but this web app. "
        "Default: any site in development, none in production.",
    )
    max_body_bytes: int = Field(1_048_576, ge=1024, description="Largest request body the web app reads (413).")
    webchat_messages_per_minute: int = Field(20, ge=1, description="Web chat messages one customer may send.")
    webchat_ip_messages_per_minute: int = Field(60, ge=1, description="Web chat messages from one IP address.")
    webchat_new_sessions_per_hour: int = Field(30, ge=1, description="New web chat customers from one IP address.")
    event_streams_per_ip: int = Field(20, ge=1, description="Open live event streams from one IP address.")
    event_streams_per_client: int = Field(4, ge=1, description="Open live event streams of one customer or user.")
    console_safety_poll_s: float = Field(
        15.0,
        gt=0,
        description="On PostgreSQL a committed ticket change wakes the console's live streams at once (LISTEN/NOTIFY); "
        "they also poll this often, so a lost notification or a dropped listener delays an update, never loses it. "
        "On SQLite the streams poll every second.",
    )
    tracker_retention_days: int = Field(
        30, ge=0, description="Rasa's tracker events older than this many days are deleted; 0 keeps them forever."
    )
    turn_catch_up_settle_s: float = Field(
        120.0,
        gt=0,
        description="How old a tracker event must be before the worker's turn catch-up logs it if the CRM lacks "
        "it: longer than a turn holds its conversation (Rasa's lock lifetime, 60 s) plus the event broker's delay.",
    )
    log_level: str = "INFO"

    class Config:
        env_prefix = "KEFU_"
        env_file = ".env"
        env_file_encoding = "utf-8"

    @validator("database_url", "tracker_store_url")
    def _sqlalchemy_can_use(cls, value: str, field: Any) -> str:
        # Checked here, so that a typo is one line naming its setting rather than create_engine's traceback.
        if not value and field.name == "tracker_store_url":
            return value
        try:
            url = make_url(value)
        except (ArgumentError, ValueError):  # their messages repeat the URL, password and all
            raise ValueError("must be a SQLAlchemy URL such as sqlite:///var/kefu.db") from None
        try:
            url.get_dialect().dbapi()
        except NoSuchModuleError:
            raise ValueError(f"SQLAlchemy has no database {url.drivername!r} (sqlite, postgresql, ...)") from None
        except ImportError as error:
            raise ValueError(f"the driver of {url.drivername} is not installed ({error})") from None
        return value

    @validator("redis_url")
    def _redis_url_has_scheme(cls, value: str) -> str:
        if value and not value.startswith(("redis://", "rediss://")):
            raise ValueError("must be a Redis URL such as redis://127.0.0.1:6379/0")
        return value

    @validator("rabbitmq_url")
    def _rabbitmq_url_is_safe(cls, value: str, values: dict[str, Any]) -> str:
        if not value:
            return value
        url = urlsplit(value)
        if url.scheme not in ("amqp", "amqps") or not url.hostname:
            raise ValueError("must be a RabbitMQ URL such as amqp://kefu:PASSWORD@rabbitmq:5672/kefu")
        if not (url.username and url.password):
            raise ValueError("must name the user and password, amqp://USER:PASSWORD@host/vhost")
        if values.get("env") == "production" and (unquote(url.username), unquote(url.password)) == ("guest", "guest"):
            raise ValueError("RabbitMQ's default guest/guest account is refused in production: create a user")
        return value

    @validator("webchat_embed_origins")
    def _origins_are_bare(cls, value: str | None) -> str | None:
        if value is None:
            return value
        origins = [origin.strip().rstrip("/") for origin in value.split(",") if origin.strip()]
        for origin in origins:
            url = urlsplit(origin)
            if origin != "*" and (url.scheme not in ("http", "https") or not url.hostname or url.path or url.query):
                raise ValueError(f"{origin!r} is not an origin such as https://shop.example (or * for any site)")
        return ",".join(origins)

    @validator("password_hash_profile")
    def _production_hashes_at_full_cost(cls, value: PasswordHashProfile, values: dict[str, Any]) -> PasswordHashProfile:
        if values.get("env") == "production" and value != "rfc_9106_low_memory":
            raise ValueError(f"{value} is for tests: KEFU_ENV=production hashes passwords with rfc_9106_low_memory")
        return value

    @root_validator(skip_on_failure=True)
    def _defaults_follow_other_settings(cls, values: dict[str, Any]) -> dict[str, Any]:
        values["rasa_url"] = values["rasa_url"] or f"http://{values['rasa_host']}:{values['rasa_port']}"
        values["action_url"] = values["action_url"] or f"http://{values['action_host']}:{values['action_port']}/webhook"
        values["nlu_model"] = values["nlu_model"] or values["models_dir"] / "nlu" / "active.tar.gz"
        return values

    @property
    def rest_channel_enabled(self) -> bool:
        """Whether Rasa serves its REST channel, which takes any sender id: a development and test tool."""
        return self.env == "development" if self.rest_channel is None else self.rest_channel

    @property
    def webchat_embedders(self) -> tuple[str, ...]:
        """Origins whose pages may frame the web chat besides this web app's own, ``("*",)`` for any site."""
        if self.webchat_embed_origins is None:
            return ("*",) if self.env == "development" else ()
        return tuple(filter(None, self.webchat_embed_origins.split(",")))

    @property
    def tracker_database_url(self) -> str:
        """SQLAlchemy URL of Rasa's tracker store: ``tracker_store_url``, or the SQLite file in ``var_dir``."""
        return self.tracker_store_url or f"sqlite:///{self.var_dir / 'rasa_tracker.db'}"

    @property
    def web_url(self) -> str:
        """Base URL of the kefu web app, as customers and agents reach it."""
        return self.public_url.rstrip("/") or f"http://{self.web_host}:{self.web_port}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings of this process, read once from the environment (development fills in the internal tokens)."""
    # Every field has a default, but Field(default, ...) passes it positionally, which mypy does not read as one.
    return with_internal_tokens(Settings())  # type: ignore[call-arg]
