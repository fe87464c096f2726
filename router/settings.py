"""The one typed settings object, read from ``KEFU_*`` environment variables (and an optional ``.env``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import BaseSettings, Field, validator

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Everything a kefu process may be configured with; every field has a safe local default."""

    database_url: str = Field(
        f"sqlite:///{PROJECT_ROOT / 'var' / 'kefu.db'}",
        description="SQLAlchemy URL of the CRM database (SQLite file by default, PostgreSQL by URL).",
    )
    web_host: str = "127.0.0.1"
    web_port: int = 8000
    rasa_port: int = 5005
    action_port: int = 5055
    rasa_url: str = "http://127.0.0.1:5005"
    action_url: str = "http://127.0.0.1:5055/webhook"
    public_url: str = Field("", description="URL customers and agents use; defaults to the web host/port.")
    secret_key: str = Field("kefu-dev-secret-change-me", description="Signs sessions and CSRF tokens.")
    project_dir: Path = PROJECT_ROOT
    models_dir: Path = PROJECT_ROOT / "models"
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
    tracker_retention_days: int = Field(
        30, ge=0, description="Rasa's tracker events older than this many days are deleted; 0 keeps them forever."
    )
    log_level: str = "INFO"

    class Config:
        env_prefix = "KEFU_"
        env_file = ".env"
        env_file_encoding = "utf-8"

    @validator("database_url")
    def _url_has_scheme(cls, value: str) -> str:
        if "://" not in value:
            raise ValueError("must be a SQLAlchemy URL such as sqlite:///var/kefu.db")
        return value

    @property
    def tracker_database_url(self) -> str:
        """SQLAlchemy URL of Rasa's tracker store, the SQLite file ``kefu run`` points Rasa at."""
        return f"sqlite:///{self.var_dir / 'rasa_tracker.db'}"

    @property
    def web_url(self) -> str:
        """Base URL of the kefu web app, as customers and agents reach it."""
        return self.public_url.rstrip("/") or f"http://{self.web_host}:{self.web_port}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings of this process, read once from the environment."""
    return Settings()
