"""Admin pages: review inbox and labelling, retrain with a live progress bar, both gates' reports, the registry."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, BackgroundTasks, Depends, Form, Request
from starlette.responses import HTMLResponse, RedirectResponse

from router.bootstrap import Kefu
from router.crm.models import Role
from router.crm.unit_of_work import ReadOnlyUnitOfWork
from router.errors import Conflict, InvalidInput
from router.training import jobs, registry
from router.training.labels import Response, correct_ticket_category, define_intent, known_intents, label_turns
from router.web.security import CurrentUser, current_user, get_kefu, get_reader, require_role, verify_csrf
from router.web.templating import render
from router.web.views import acting_user, visible_ticket

router = APIRouter(
    prefix="/admin",
    include_in_schema=False,
    dependencies=[Depends(require_role(Role.admin.value)), Depends(verify_csrf)],
)
admin_user = require_role(Role.admin.value)
# Agents correct a ticket's complaint category from the console; the correction becomes a training example.
category_router = APIRouter(
    prefix="/console/tickets/{ticket_id}", include_in_schema=False, dependencies=[Depends(verify_csrf)]
)
MAX_TURN_IDS_FIELD_CHARS = 20_000


def _redirect(path: str, notice: str) -> RedirectResponse:
    return RedirectResponse(f"{path}?notice={quote(notice)}", status_code=303)


def _turn_ids(field: str) -> list[int]:
    if len(field) > MAX_TURN_IDS_FIELD_CHARS:
        raise InvalidInput("too many turns in one label")
    parts = [part.strip() for part in field.split(",") if part.strip()]
    if not parts or not all(part.isdigit() for part in parts):
        raise InvalidInput("choose the turns to label")
    return [int(part) for part in parts]


@router.get("", response_class=HTMLResponse)
def admin_home() -> RedirectResponse:
    """The admin area starts at the inbox."""
    return RedirectResponse("/admin/inbox", status_code=303)


@router.get("/inbox", response_class=HTMLResponse)
def inbox_page(request: Request, notice: str = "", reader: ReadOnlyUnitOfWork = Depends(get_reader)) -> HTMLResponse:
    """Misunderstood customer turns, grouped, with a label form per group."""
    # Its clustering (scikit-learn, gensim) loads on the first visit, not at every start of the web app.
    from router.training.inbox import review_inbox

    kefu: Kefu = request.app.state.kefu
    groups = review_inbox(reader.session, kefu.settings.review_confidence_threshold)
    intents = known_intents(reader.session, kefu.settings.project_dir)
    return render(request, "admin_inbox.html", {"groups": groups, "intents": intents, "notice": notice})


@router.post("/inbox/label")
def label_group(
    turn_ids: str = Form(""),
    intent: str = Form(""),
    new_intent: str = Form(""),
    response_en: str = Form(""),
    response_zh: str = Form(""),
    user: CurrentUser = Depends(admin_user),
    kefu: Kefu = Depends(get_kefu),
) -> RedirectResponse:
    """Label a group with an existing intent, a new one (created with its responses), or out of scope."""
    ids = _turn_ids(turn_ids)
    project_dir = kefu.settings.project_dir
    with kefu.uow() as uow:
        if new_intent.strip():
            responses = [Response("en", response_en), Response("zh", response_zh)]
            intent = define_intent(uow.session, new_intent, responses, project_dir, user.id).name
        if not intent:
            raise InvalidInput("pick an intent, name a new one, or choose out of scope")
        examples = label_turns(uow.session, ids, intent, project_dir, user.id)
        uow.commit()
    return _redirect("/admin/inbox", f"{len(examples)} 条已标注为 labelled as {intent}")


def _job_json(job: Any) -> dict[str, Any]:
    return {
        "id": job.id,
        "status": job.status.value,
        "progress": job.progress,
        "message": job.message,
        "log": job.log[-6000:],
        "version": job.params.get("version"),
    }


# The gates of one version in reading order: the assistant's intents, then the complaint categories.
GATE_TITLES = {registry.NLU: "意图 Intents (assistant)", registry.TRIAGE: "投诉分类 Complaint categories"}


def _latest_report(versions: list[Any]) -> dict[str, Any] | None:
    nlu = next((row for row in versions if row.kind == registry.NLU and row.metrics.get("gate")), None)
    if nlu is None:
        return None
    gated = {row.kind: row for row in versions if row.version == nlu.version and row.metrics.get("gate")}
    gates = [
        {"kind": kind, "title": title, **gated[kind].metrics["gate"]}
        for kind, title in GATE_TITLES.items()
        if kind in gated
    ]
    return {
        "version": nlu.version,
        "status": nlu.status.value,
        "passed": all(gate["passed"] for gate in gates),
        "tolerance": gates[0]["tolerance"],
        "gates": gates,
    }


@router.get("/models", response_class=HTMLResponse)
def models_page(
    request: Request, notice: str = "", job: int | None = None, reader: ReadOnlyUnitOfWork = Depends(get_reader)
) -> HTMLResponse:
    """Retrain button and progress, both gates' side-by-side reports, and the registry with promote/rollback."""
    versions = registry.list_versions(reader.session)
    current = jobs.unfinished_job(reader.session)
    shown = (
        jobs.get_job(reader.session, job) if job else current or next(iter(jobs.recent_jobs(reader.session, 1)), None)
    )
    context = {
        "notice": notice,
        "versions": versions,
        "report": _latest_report(versions),
        "job": _job_json(shown) if shown else None,
        "busy": current is not None,
    }
    return render(request, "admin_models.html", context)


@router.get("/jobs/{job_id}")
def job_status(job_id: int, reader: ReadOnlyUnitOfWork = Depends(get_reader)) -> dict[str, Any]:
    """Progress of one job, polled by the page's progress bar."""
    return _job_json(jobs.get_job(reader.session, job_id))


def _run_in_background(kefu: Kefu, job_id: int) -> None:
    # Failures are already written to the job row (status, message, log) for the page to show.
    try:
        jobs.run_job(kefu, job_id)
    except Exception:
        return


@router.post("/retrain")
def retrain_button(
    background: BackgroundTasks, user: CurrentUser = Depends(admin_user), kefu: Kefu = Depends(get_kefu)
) -> RedirectResponse:
    """Queue a retraining and run it in this process after the response (or ``kefu worker`` claims it first)."""
    with kefu.uow() as uow:
        job = jobs.enqueue_retrain(uow.session, user.id)
        uow.commit()
    background.add_task(_run_in_background, kefu, job.id)
    return RedirectResponse(f"/admin/models?job={job.id}", status_code=303)


@router.post("/models/{version}/promote")
def promote_version(
    version: str, reason: str = Form(""), user: CurrentUser = Depends(admin_user), kefu: Kefu = Depends(get_kefu)
) -> RedirectResponse:
    """Promote a version (a refused one only with a reason, audited) and hot-reload Rasa."""
    return _switch(kefu, version, reason, user, rollback=False)


@router.post("/models/{version}/rollback")
def rollback_version(
    version: str, reason: str = Form(""), user: CurrentUser = Depends(admin_user), kefu: Kefu = Depends(get_kefu)
) -> RedirectResponse:
    """Go back to an earlier version in one click."""
    return _switch(kefu, version, reason, user, rollback=True)


def _switch(kefu: Kefu, version: str, reason: str, user: CurrentUser, rollback: bool) -> RedirectResponse:
    settings = kefu.settings
    switch = registry.rollback if rollback else registry.promote
    promotion = switch(
        kefu.uow,
        version,
        settings.models_dir,
        settings.rasa_url,
        user.id,
        reason,
        rasa_token=settings.rasa_token,
        rasa_pulls=settings.model_server,
    )
    return _redirect("/admin/models", f"{promotion.version} 已启用 is active. {promotion.rasa_message}")


@category_router.post("/category")
def correct_category(
    ticket_id: int,
    category: str = Form(""),
    version: int | None = Form(None),
    user: CurrentUser = Depends(current_user),
    kefu: Kefu = Depends(get_kefu),
) -> RedirectResponse:
    """Fix the ticket's complaint category (agents of its team, supervisors, admins); the next retrain learns it."""
    with kefu.uow() as uow:
        ticket = visible_ticket(uow.session, acting_user(uow.session, user), ticket_id)
        if version is not None and ticket.version != version:
            raise Conflict(f"ticket {ticket.number} changed since you opened it; reload it")
        correct_ticket_category(uow.session, ticket_id, category, kefu.settings.data_dir, user.id)
        uow.commit()
    return _redirect(f"/console/tickets/{ticket_id}", f"分类已更正 Category corrected to {category}")
