"""The model server: Rasa servers configured with ``models:`` in their endpoints pull the active model here.

Rasa's protocol (``rasa.core.agent._pull_model_and_fingerprint``): ``GET`` with ``If-None-Match`` set to the
fingerprint of the model it has, which is the ``ETag`` of the last model it pulled. 304 (or 204) means keep it; 200
carries the model, its ``ETag`` (the stored bytes' content hash) and its file name in a ``filename`` header, which
Rasa's ``GET /status`` then shows as ``model_file``. Rasa sends the headers of its endpoint config, so the token
travels as ``Authorization: Bearer`` (never in the URL, where access logs would keep it): the Rasa API token
``KEFU_RASA_TOKEN``, which Rasa and the web app already share. Off unless ``KEFU_MODEL_SERVER`` is set: the
single-process ``make run`` reloads its one Rasa with ``PUT /model`` instead.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Depends, Request
from starlette.responses import JSONResponse, Response

from router.bootstrap import Kefu
from router.training import artifacts, registry
from router.web.security import get_kefu

MODEL_SERVER_PATH = "/internal/models/nlu"

router = APIRouter()


def _authorized(request: Request, token: str) -> bool:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return bool(token) and scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def _already_has(if_none_match: str, etag: str) -> bool:
    # Rasa sends back the ETag it stored, as it was sent; a proxy may have weakened it (W/).
    return any(tag.strip().removeprefix("W/") in (etag, "*") for tag in if_none_match.split(","))


@router.get(MODEL_SERVER_PATH, include_in_schema=False)
def active_rasa_model(request: Request, kefu: Kefu = Depends(get_kefu)) -> Response:
    """The active Rasa model for the Rasa servers (token required): 200 with it, 304 if unchanged, 404 if none."""
    if not kefu.settings.model_server:
        return JSONResponse({"error": "the model server is off (KEFU_MODEL_SERVER)", "status": 404}, status_code=404)
    if not _authorized(request, kefu.settings.rasa_token):
        return JSONResponse(
            {"error": "missing or wrong token", "status": 401}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
        )
    with kefu.reader() as reader:
        stamp = artifacts.active_stamp(reader.session, registry.NLU)
        if stamp is None:
            return JSONResponse({"error": "no active Rasa model in the model store", "status": 404}, status_code=404)
        etag = f'"{stamp.content_hash}"'
        if _already_has(request.headers.get("if-none-match", ""), etag):
            return Response(status_code=304, headers={"ETag": etag})
        model = artifacts.content(reader.session, registry.NLU, stamp.version)
    headers = {"ETag": etag, "filename": f"{stamp.version}.tar.gz", "Cache-Control": "no-store"}
    return Response(model, media_type="application/gzip", headers=headers)
