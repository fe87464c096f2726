"""Batch prediction in forked workers: same answers in input order, worker errors surface, threads refuse fork."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import threading
from pathlib import Path

import numpy as np
import pytest
from sklearn.cluster import KMeans
from typer.testing import CliRunner

from router.cli import app
from router.errors import InvalidInput
from router.triage.classifier import TriageClassifier
from router.triage.datasets import read_texts
from router.triage.parallel import PARALLEL_FROM, WorkerFailed, auto_workers, cores, predict_chunks, split
from router.triage.training import train_model_dir

COMPLAINTS = Path(__file__).resolve().parents[2] / "data" / "triage" / "complaints.csv"
runner = CliRunner(mix_stderr=False)


@pytest.fixture(scope="module")
def texts() -> list[str]:
    """Our 962 complaints twice over in a shuffled-looking order: enough for several chunks per worker."""
    complaints, _ = read_texts(COMPLAINTS, "text", "category")
    return [complaints[(index * 7) % len(complaints)] for index in range(2 * len(complaints))]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    complaints, categories = read_texts(COMPLAINTS, "text", "category")
    out = tmp_path_factory.mktemp("parallel") / "model"
    train_model_dir(complaints, categories, out)
    return out


@pytest.fixture(scope="module")
def classifier(model_dir: Path) -> TriageClassifier:
    from router.triage.store import load_artifact

    return load_artifact(model_dir, "classifier", TriageClassifier)


def test_workers_give_the_single_process_answers_in_input_order(classifier: TriageClassifier, texts: list[str]) -> None:
    for explain in (0, 5):
        alone = classifier.predict(texts, explain=explain)
        assert classifier.predict(texts, explain=explain, workers=2) == alone
        assert classifier.predict(texts, explain=explain, workers=3) == alone
    assert len({prediction.label for prediction in alone}) > 5


def test_an_error_in_a_worker_is_raised_naming_the_text(classifier: TriageClassifier, texts: list[str]) -> None:
    broken: list[object] = [*texts]
    broken[1500] = None
    with pytest.raises(InvalidInput, match="text 1500 is NoneType, not a string"):
        classifier.predict(broken, workers=2)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="text 3 is bytes, not a string"):
        classifier.predict(["ok", "fine", "good", b"\xff\x00"])  # type: ignore[list-item]


def test_a_worker_that_dies_is_a_clear_error(classifier: TriageClassifier, texts: list[str]) -> None:
    answers = predict_chunks(classifier, split(texts, 2, most=50), workers=2)
    assert len(next(answers)) == 50
    workers = multiprocessing.active_children()
    assert workers
    for worker in workers:
        os.kill(worker.pid, signal.SIGKILL)  # as the kernel's out-of-memory killer would
    with pytest.raises(WorkerFailed, match="worker process died"):
        list(answers)
    assert not multiprocessing.active_children()


def test_a_threaded_process_is_not_forked(classifier: TriageClassifier, texts: list[str]) -> None:
    release = threading.Event()
    server = threading.Thread(target=release.wait)
    server.start()
    try:
        with pytest.raises(InvalidInput, match="single-threaded process"):
            classifier.predict(texts, workers=2)
        assert len(classifier.predict(texts[:10])) == 10
    finally:
        release.set()
        server.join()


@pytest.mark.timeout(120)
def test_workers_answer_after_native_thread_pools_have_run(classifier: TriageClassifier, texts: list[str]) -> None:
    # As in a benchmark or admin script: numpy's BLAS and scikit-learn's OpenMP have started their thread pools.
    matrix = np.random.default_rng(13).random((600, 600))
    matrix @ matrix
    KMeans(n_clusters=3, n_init=1, random_state=13).fit(matrix)
    assert threading.active_count() == 1 and len(os.listdir("/proc/self/task")) > 1, "native threads, no Python ones"

    assert classifier.predict(texts, explain=0, workers=2) == classifier.predict(texts, explain=0)


def test_chunks_cover_the_input_in_order_and_stream(classifier: TriageClassifier, texts: list[str]) -> None:
    chunks = split(texts, 2, most=100)
    assert max(len(chunk) for chunk in chunks) == 100
    assert [text for chunk in chunks for text in chunk] == texts
    assert [len(chunk) for chunk in split(texts[:10], 2)] == [2, 2, 2, 2, 2]
    answers = predict_chunks(classifier, iter(chunks), workers=2, explain=0)
    assert len(next(answers)) == 100
    answers.close()
    with pytest.raises(InvalidInput, match="workers must be at least 1"):
        next(predict_chunks(classifier, chunks, workers=0))
    assert auto_workers(PARALLEL_FROM - 1) == 1 and auto_workers(PARALLEL_FROM) == cores()


def test_cli_workers_keep_one_line_per_record(model_dir: Path, texts: list[str], tmp_path: Path) -> None:
    records = [{"msg": text} for text in texts]
    records[1200] = {"msg": ""}
    data = tmp_path / "many.jsonl"
    data.write_text("\n".join(json.dumps(record, ensure_ascii=False) for record in records), encoding="utf-8")
    outputs = []
    for workers in ("1", "2", "0"):
        result = runner.invoke(
            app,
            ["triage", "predict", "--model", str(model_dir), "--data", str(data), "--text-column", "msg",
             "--workers", workers],
        )  # fmt: skip
        assert result.exit_code == 0, result.stderr
        outputs.append(result.stdout)
    assert outputs[0] == outputs[1] == outputs[2]
    lines = [json.loads(line) for line in outputs[0].splitlines()]
    assert len(lines) == len(texts) and lines[1200] == {"label": None, "error": "empty text"}
