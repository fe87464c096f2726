"""KEFU_RABBITMQ_URL: checked up front, and `kefu run` then gives Rasa the Pika broker and starts the consumer;
without it everything is as before."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pydantic
import pytest
import yaml
from rasa.core.brokers.pika import PikaEventBroker

from router.cluster import procfile_commands
from router.runner import write_endpoints
from router.settings import Settings


def test_without_rabbitmq_each_rasa_writes_its_turns_and_no_consumer_runs(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, var_dir=tmp_path)
    endpoints = yaml.safe_load(write_endpoints(settings).read_text())
    assert endpoints["event_broker"] == {"type": "bot.event_broker.CrmEventBroker"}
    assert list(procfile_commands(settings)) == ["rasa", "actions", "web", "worker"]


def test_with_rabbitmq_rasa_publishes_to_the_durable_queue_and_kefu_run_starts_the_consumer(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None,
        var_dir=tmp_path,
        env="production",
        password_hash_profile="rfc_9106_low_memory",
        rabbitmq_url="amqps://ke%40fu:p%3Aw%2Fd@mq.internal/kefu?heartbeat=30",
        rabbitmq_queue="shop.turns",
    )
    broker = yaml.safe_load(write_endpoints(settings).read_text())["event_broker"]
    assert broker["type"] == "bot.pika_broker.ConfirmedPikaEventBroker"
    assert (broker["exchange_name"], broker["queues"]) == ("shop.turns", ["shop.turns"])
    assert list(procfile_commands(settings)) == ["rasa", "actions", "web", "worker", "turns"]
    # The URL Rasa's broker rebuilds from the entry: credentials as written, TLS's port, virtual host and options.
    options = {key: value for key, value in broker.items() if key not in ("type", "url")}
    pika = PikaEventBroker(broker["url"], event_loop=asyncio.new_event_loop(), **options)
    assert pika._configure_url() == "amqps://ke%40fu:p%3Aw%2Fd@mq.internal:5671/kefu?heartbeat=30"


@pytest.mark.parametrize(
    ("env", "url", "refusal"),
    [
        ("development", "redis://guest:guest@127.0.0.1:5672/", "must be a RabbitMQ URL"),
        ("development", "amqp://127.0.0.1:5672/", "must name the user and password"),
        ("production", "amqp://guest:guest@mq.internal:5672/", "guest/guest account is refused in production"),
    ],
)
def test_a_rabbitmq_url_without_a_user_of_its_own_is_refused(env: str, url: str, refusal: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=refusal):
        Settings(_env_file=None, env=env, rabbitmq_url=url)


def test_the_local_rabbitmq_guest_account_serves_development() -> None:
    settings = Settings(_env_file=None, rabbitmq_url="amqp://guest:guest@127.0.0.1:5672/")
    assert settings.rabbitmq_url == "amqp://guest:guest@127.0.0.1:5672/"
