"""A small client for the Rasa server's HTTP API: what the router needs when a ticket is resolved."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from router.errors import KefuError

CSAT_INTENT = "EXTERNAL_ticket_resolved"


class RasaUnavailable(KefuError):
    """The Rasa server did not answer or refused the request (the caller may retry later)."""


class RasaApi:
    """Talks to one Rasa server (``--enable-api``); one instance per process, closed on shutdown.

    Sender ids keep their ``:`` unescaped: Rasa's ``<conversation_id:path>`` routes do not unquote ``%3A``.
    """

    def __init__(self, base_url: str, timeout_seconds: float = 30.0, token: str = "") -> None:
        params = {"token": token} if token else None
        self._client = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout_seconds, params=params)

    def _post(self, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self._client.post(path, **kwargs)
        except httpx.HTTPError as error:
            raise RasaUnavailable(f"Rasa server at {self._client.base_url} unreachable: {error}") from error
        if response.status_code >= 400:
            raise RasaUnavailable(f"Rasa answered {response.status_code} on {path}: {response.text[:300]}")
        return response.json()

    def resume(self, sender_id: str) -> None:
        """Let the bot speak again in a conversation an agent took over (a no-op when it was not paused)."""
        self._post(f"/conversations/{quote(sender_id, safe=':')}/tracker/events", json={"event": "resume"})

    def trigger_intent(self, sender_id: str, intent: str, entities: dict[str, Any] | None = None) -> list[dict]:
        """Make the bot act as if the customer had said ``intent``, replying on the customer's latest channel.

        Channels without their own output channel (REST, web chat) get the replies back here; web chat shows
        them from the CRM, where the event broker logs them.
        """
        body = self._post(
            f"/conversations/{quote(sender_id, safe=':')}/trigger_intent",
            params={"output_channel": "latest", "include_events": "NONE"},
            json={"name": intent, "entities": entities or {}},
        )
        return body.get("messages", [])

    def ask_csat(self, sender_id: str, ticket_number: str) -> list[dict]:
        """On ticket resolve: resume the paused conversation and have the bot ask the satisfaction question."""
        self.resume(sender_id)
        return self.trigger_intent(sender_id, CSAT_INTENT, {"ticket_number": ticket_number})

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()
