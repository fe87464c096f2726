"""``/healthz``: whether this web process can reach its database, for load balancers and ``kefu doctor``."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.responses import JSONResponse

from router.bootstrap import Kefu
from router.web.security import get_kefu

router = APIRouter()


@router.get("/healthz", tags=["ops"])
def healthz(kefu: Kefu = Depends(get_kefu)) -> JSONResponse:
    """200 with ``{"status": "ok"}`` when the database answers, 503 with the reason when it does not."""
    try:
        with kefu.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except SQLAlchemyError as error:
        reason = str(error).splitlines()[0]
        return JSONResponse({"status": "error", "database": reason}, status_code=503)
    return JSONResponse({"status": "ok", "database": "ok"})
