"""The console's live stream over real HTTP: new tickets arrive within seconds, other teams' tickets never do."""

from __future__ import annotations

import json
import re
import threading
import time

import httpx

from router.bootstrap import bootstrap
from tests.support.crm import DEMO_PASSWORD, open_demo_ticket
from tests.support.web import WebServer

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def _logged_in(base_url: str, username: str) -> httpx.Client:
    client = httpx.Client(base_url=base_url, timeout=30)
    token = CSRF_FIELD.search(client.get("/login").text).group(1)
    client.post("/login", data={"username": username, "password": DEMO_PASSWORD, "csrf_token": token})
    return client


def test_stream_pushes_own_team_tickets_only(web_server: WebServer) -> None:
    received: list[dict] = []
    connected = threading.Event()

    def listen(client: httpx.Client) -> None:
        with client.stream("GET", "/console/stream", timeout=httpx.Timeout(30, read=60)) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            connected.set()
            for line in stream.iter_lines():
                if line.startswith("data: "):
                    received.append(json.loads(line[6:]))
                if any(ticket["category"] == "refund_return" for ticket in received):
                    return  # the last ticket opened: everything before it has been streamed too

    client = _logged_in(web_server.base_url, "lina")  # logistics + after_sales
    listener = threading.Thread(target=listen, args=(client,), daemon=True)
    listener.start()
    assert connected.wait(30)
    kefu = bootstrap(web_server.settings)
    try:
        logistics = open_demo_ticket(kefu, "web:stream-1", "<i>快递</i>没到")
        billing = open_demo_ticket(kefu, "web:stream-2", "扣了两次款", category="payment_billing", team="billing")
        time.sleep(1.5)  # a poll passes between the billing ticket and the last one
        after_sales = open_demo_ticket(kefu, "web:stream-3", "要退货", category="refund_return", team="after_sales")
        listener.join(timeout=30)
    finally:
        kefu.dispose()
        client.close()
    ids = [ticket["id"] for ticket in received]
    assert logistics in ids and after_sales in ids
    assert billing not in ids
    assert next(t for t in received if t["id"] == logistics)["subject"] == "<i>快递</i>没到"  # data, not markup
