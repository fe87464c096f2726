"""Label → export → retrain → gate → hot reload on a real Rasa server, and worse intent or complaint models refused."""

from __future__ import annotations

import csv
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml
from sqlalchemy import select

from router.bootstrap import Kefu
from router.crm.interactions import Turn, record_turns
from router.crm.models import AuditEntry, ModelStatus, ModelVersion, Speaker, User
from router.crm.seed import seed_demo
from router.errors import Conflict
from router.settings import PROJECT_ROOT
from router.training import registry
from router.training.inbox import review_inbox
from router.training.labels import Response, define_intent, label_turns
from router.training.nlu_yaml import read_nlu_file, write_nlu_file
from router.training.pipeline import RetrainResult, TrainingSources, retrain
from router.training.rasa_runner import rasa_environment, rasa_executable
from tests.support.crm import make_kefu
from tests.support.listening import free_port
from tests.support.rasa_stack import _stop

# Four real trainings and a Rasa server: far beyond the suite default on a shared 2-core machine.
pytestmark = [pytest.mark.rasa, pytest.mark.timeout(3600)]

NEW_INTENT = "ask_loyalty_points"
NEW_INTENT_ANSWER = "You earn one loyalty point per yuan; redeem them at checkout."
# What customers said that the assistant had no intent for; agents answered them by hand.
LOYALTY_MESSAGES = [
    "how many loyalty points do i have",
    "how do i redeem my loyalty points",
    "can i use my loyalty points to pay",
    "do my loyalty points expire",
    "where can i see my loyalty points balance",
    "how do i earn loyalty points",
    "my loyalty points are missing",
    "can loyalty points be transferred to a friend",
    "what are loyalty points worth",
    "check my loyalty points please",
    "我的积分有多少",
    "积分怎么兑换",
    "积分可以抵扣现金吗",
    "积分什么时候过期",
    "怎么查看我的积分余额",
]
# Never labelled: the retrained model must generalise to it.
# The machine is shared: a Rasa server may take minutes to load its model under load.
START_TIMEOUT_SECONDS = 600
UNSEEN_LOYALTY_MESSAGE = "how many loyalty points will i earn"


@dataclass
class Loop:
    """A kefu with its own data copy and models, and a Rasa server started from the active model."""

    kefu: Kefu
    rasa_url: str
    admin_id: int
    first: RetrainResult

    def parse(self, text: str) -> dict:
        response = httpx.post(f"{self.rasa_url}/model/parse", json={"text": text}, timeout=60)
        response.raise_for_status()
        return response.json()

    def say(self, sender: str, text: str) -> list[dict]:
        response = httpx.post(
            f"{self.rasa_url}/webhooks/rest/webhook", json={"sender": sender, "message": text}, timeout=60
        )
        response.raise_for_status()
        return response.json()

    def tracker_events(self, sender: str) -> list[dict]:
        response = httpx.get(f"{self.rasa_url}/conversations/{sender}/tracker", timeout=60)
        response.raise_for_status()
        return response.json()["events"]


def _start_rasa(model: Path, work_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    # A persistent tracker store: PUT /model builds a new agent, and only a shared store keeps conversations.
    port = free_port()
    endpoints = {"tracker_store": {"type": "SQL", "dialect": "sqlite", "db": str(work_dir / "tracker.db")}}
    (work_dir / "endpoints.yml").write_text(yaml.safe_dump(endpoints), encoding="utf-8")
    (work_dir / "credentials.yml").write_text("rest:\n", encoding="utf-8")
    command = [rasa_executable(), "run", "--enable-api", "--port", str(port), "--model", str(model)]
    command += ["--endpoints", str(work_dir / "endpoints.yml"), "--credentials", str(work_dir / "credentials.yml")]
    with (work_dir / "rasa.log").open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env=rasa_environment(PROJECT_ROOT),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError((work_dir / "rasa.log").read_text(errors="replace")[-3000:])
        try:
            if httpx.get(f"{url}/status", timeout=5).json().get("model_id"):
                return process, url
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(1)
    _stop(process)
    raise RuntimeError(f"Rasa did not start in {START_TIMEOUT_SECONDS} s")


def _copy_data(target: Path) -> Path:
    shutil.copytree(PROJECT_ROOT / "data", target, ignore=shutil.ignore_patterns("reviewed"))
    return target


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loop]:
    """Version 1 trained from the project's data and promoted, served by a real Rasa server."""
    work_dir = tmp_path_factory.mktemp("training-loop")
    rasa_port_placeholder = free_port()
    kefu = make_kefu(
        f"sqlite:///{work_dir / 'kefu.db'}",
        work_dir,
        data_dir=_copy_data(work_dir / "data"),
        models_dir=work_dir / "models",
        rasa_url=f"http://127.0.0.1:{rasa_port_placeholder}",
    )
    with kefu.uow() as uow:
        seed_demo(uow.session, kefu.passwords, kefu.settings.data_dir)
        uow.commit()
        admin_id = uow.session.execute(select(User.id).where(User.role == "admin")).scalars().first()
    first = retrain(kefu, lambda *_: None, lambda _: None, user_id=admin_id)
    process, url = _start_rasa(registry.active_link(kefu.settings.models_dir, registry.NLU), work_dir)
    kefu.settings.rasa_url = url
    try:
        yield Loop(kefu, url, admin_id, first)
    finally:
        _stop(process)
        kefu.dispose()


def _log_misunderstood_turns(loop: Loop) -> None:
    """Customers ask about loyalty points; the bot guesses, an agent takes over each time."""
    with loop.kefu.uow() as uow:
        for index, text in enumerate(LOYALTY_MESSAGES):
            sender = f"web:{uuid.uuid4()}"
            understood = loop.parse(text)["intent"]
            turns = [
                Turn(
                    f"c{index}",
                    sender,
                    Speaker.customer,
                    text,
                    intent=understood["name"],
                    confidence=understood["confidence"],
                ),
                Turn(f"a{index}", sender, Speaker.agent, "Let me check that for you."),
            ]
            record_turns(uow.session, turns)
        uow.commit()


def test_first_version_is_promoted_and_served(loop: Loop) -> None:
    assert loop.first.promoted and loop.first.passed
    assert loop.first.complaint_report is not None and loop.first.complaint_report.candidate.examples > 150
    assert loop.parse("hello")["intent"]["name"] == "greet"


def test_labelled_turns_are_understood_after_retraining_and_hot_reload(loop: Loop) -> None:
    before = loop.parse(UNSEEN_LOYALTY_MESSAGE)["intent"]["name"]
    assert before != NEW_INTENT
    conversation = f"keep-{uuid.uuid4().hex[:8]}"
    loop.say(conversation, "hello")
    _log_misunderstood_turns(loop)

    with loop.kefu.uow() as uow:
        groups = review_inbox(uow.session, loop.kefu.settings.review_confidence_threshold)
        loyalty_ids = [turn_id for group in groups for turn_id in group.interaction_ids]
        assert len(loyalty_ids) == len(LOYALTY_MESSAGES)
        assert len(groups) < len(LOYALTY_MESSAGES), "similar texts should share a group"
        define_intent(
            uow.session,
            NEW_INTENT,
            [Response("en", NEW_INTENT_ANSWER), Response("zh", "每消费一元积一分，结账时可抵扣。")],
            loop.kefu.settings.project_dir,
            loop.admin_id,
        )
        label_turns(uow.session, loyalty_ids, NEW_INTENT, loop.kefu.settings.project_dir, loop.admin_id)
        uow.commit()

    result = retrain(loop.kefu, lambda *_: None, lambda _: None, user_id=loop.admin_id)

    assert result.passed and result.promoted, (result.intent_report.reasons, result.complaint_report.reasons)
    assert result.intent_report.candidate.per_label_f1.get(NEW_INTENT, 0) > 0
    assert result.complaint_report.previous is not None, "the complaint model is compared with the active one"
    after = loop.parse(UNSEEN_LOYALTY_MESSAGE)["intent"]
    assert after["name"] == NEW_INTENT, after
    replies = loop.say(f"new-{uuid.uuid4().hex[:8]}", "how do i redeem my loyalty points")
    assert any(NEW_INTENT_ANSWER in reply.get("text", "") for reply in replies), replies
    assert any(event.get("text") == "hello" for event in loop.tracker_events(conversation)), "conversation dropped"
    with loop.kefu.uow() as uow:
        active = registry.active_model(uow.session, registry.NLU)
        first = uow.session.execute(
            select(ModelVersion).where(ModelVersion.version == loop.first.version, ModelVersion.kind == registry.NLU)
        ).scalar_one()
        assert active.version == result.version and first.status is ModelStatus.retired


def _mislabelled_copy(target: Path) -> Path:
    """The project's data with every intent's examples moved to the next intent: a deliberately bad candidate."""
    _copy_data(target)
    for path in sorted((target / "nlu").glob("*.yml")):
        examples, others = read_nlu_file(path)
        intents = sorted({example.intent for example in examples})
        shifted = {intent: intents[(index + 1) % len(intents)] for index, intent in enumerate(intents)}
        write_nlu_file(path, [type(example)(example.text, shifted[example.intent]) for example in examples], others)
    return target


def test_worse_candidate_is_refused_until_an_admin_overrides_and_rollback_restores(loop: Loop, tmp_path: Path) -> None:
    with loop.kefu.uow() as uow:
        serving = registry.active_model(uow.session, registry.NLU).version
    bad_data = _mislabelled_copy(tmp_path / "bad-data")
    sources = TrainingSources(data_dir=bad_data, evaluation_data_dir=loop.kefu.settings.data_dir)

    result = retrain(loop.kefu, lambda *_: None, lambda _: None, user_id=loop.admin_id, sources=sources)

    assert not result.passed and not result.promoted
    assert not result.intent_report.passed and result.complaint_report.passed
    report = result.intent_report
    assert report.candidate.accuracy < report.previous.accuracy - report.tolerance
    assert loop.parse("hello")["intent"]["name"] == "greet", "a refused model must not be served"
    with loop.kefu.uow() as uow:
        assert registry.active_model(uow.session, registry.NLU).version == serving
    models_dir = loop.kefu.settings.models_dir
    with pytest.raises(Conflict, match="needs a reason"):
        registry.promote(loop.kefu.uow, result.version, models_dir, loop.rasa_url, loop.admin_id)

    registry.promote(loop.kefu.uow, result.version, models_dir, loop.rasa_url, loop.admin_id, "demo of override")
    assert loop.parse("hello")["intent"]["name"] != "greet", "the override should serve the bad model"

    registry.rollback(loop.kefu.uow, serving, models_dir, loop.rasa_url, loop.admin_id)
    with loop.kefu.uow() as uow:
        actions = [entry.action for entry in uow.session.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars()]
        override = uow.session.execute(select(AuditEntry).where(AuditEntry.action == "model.override")).scalar_one()
        override_reason = override.data["override_reason"]
    assert loop.parse("hello")["intent"]["name"] == "greet"
    assert actions[-2:] == ["model.override", "model.rollback"]
    assert override_reason == "demo of override"
    link = registry.active_link(loop.kefu.settings.models_dir, registry.NLU)
    assert link.resolve().name == f"{serving}.tar.gz"


def _recategorised_copy(target: Path) -> Path:
    """The project's data with every complaint filed under the next category: intents fine, complaints worse."""
    _copy_data(target)
    complaints_csv = target / "triage" / "complaints.csv"
    with complaints_csv.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    categories = sorted({row["category"] for row in rows})
    shifted = {category: categories[(index + 1) % len(categories)] for index, category in enumerate(categories)}
    with complaints_csv.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({**row, "category": shifted[row["category"]]} for row in rows)
    return target


def test_worse_complaint_model_refuses_the_whole_version(loop: Loop, tmp_path: Path) -> None:
    with loop.kefu.uow() as uow:
        serving = {kind: registry.active_model(uow.session, kind).version for kind in (registry.NLU, registry.TRIAGE)}
    sources = TrainingSources(
        data_dir=_recategorised_copy(tmp_path / "bad-complaints"), evaluation_data_dir=loop.kefu.settings.data_dir
    )

    result = retrain(loop.kefu, lambda *_: None, lambda _: None, user_id=loop.admin_id, sources=sources)

    assert result.intent_report.passed, result.intent_report.reasons
    complaint = result.complaint_report
    assert not complaint.passed and not result.passed and not result.promoted
    assert complaint.candidate.accuracy < complaint.previous.accuracy - complaint.tolerance
    assert complaint.candidate.examples == complaint.previous.examples > 150
    with loop.kefu.uow() as uow:
        rows = uow.session.execute(select(ModelVersion).where(ModelVersion.version == result.version)).scalars().all()
        assert {row.kind: row.status for row in rows} == {
            registry.NLU: ModelStatus.refused,
            registry.TRIAGE: ModelStatus.refused,
        }
        triage_gate = next(row for row in rows if row.kind == registry.TRIAGE).metrics["gate"]
        assert (
            triage_gate["passed"] is False
            and triage_gate["previous"]["accuracy"] > triage_gate["candidate"]["accuracy"]
        )
        active = {kind: registry.active_model(uow.session, kind).version for kind in (registry.NLU, registry.TRIAGE)}
    assert active == serving
    link = registry.active_link(loop.kefu.settings.models_dir, registry.TRIAGE)
    assert link.resolve().name == serving[registry.TRIAGE]
