"""``kefu triage``: train a classifier from any labelled file, predict from a file, build the default model."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from router.cli_common import settings_or_exit
from router.errors import InvalidInput
from router.triage.datasets import convert_clinc, read_texts

# The model modules (scikit-learn, jieba, VADER) are imported inside the commands that need them, so that
# registering these commands does not slow down every other `kefu` command.

app = typer.Typer(help="Complaint classifier and urgency triage.", no_args_is_help=True)

# Rows per predict call: big enough for vectorised speed, small enough to stream large files.
BATCH = 2000


def _fail(error: Exception) -> None:
    typer.echo(f"error: {error}", err=True)
    raise typer.Exit(code=1)


@app.command()
def train(
    data: Path = typer.Option(..., help="CSV or JSONL file of labelled texts."),
    text_column: str = typer.Option(..., help="Column (or JSON key) holding the text."),
    label_column: str = typer.Option(..., help="Column (or JSON key) holding the label."),
    out: Path = typer.Option(..., help="Model directory to write (replaced atomically)."),
) -> None:
    """Train a classifier on any labelled file; labels 'oos'/'out_of_scope' teach it what to flag."""
    from router.triage.training import train_model_dir

    try:
        texts, labels = read_texts(data, text_column, label_column)
        metrics = train_model_dir(texts, labels, out)
    except InvalidInput as error:
        _fail(error)
    typer.echo(json.dumps({key: value for key, value in metrics.items() if key != "labels"}, ensure_ascii=False))


@app.command()
def predict(
    model: Path = typer.Option(..., help="Model directory from 'kefu triage train'."),
    data: Path = typer.Option(..., help="CSV or JSONL file of texts."),
    text_column: str = typer.Option(..., help="Column (or JSON key) holding the text."),
    workers: int = typer.Option(
        0, min=0, help="Processes to predict in (0: every core from 1000 texts on, else 1); output order is kept."
    ),
) -> None:
    """Print one JSON object per input record: label, confidence, needs_review, terms (or an error)."""
    from router.triage.classifier import TriageClassifier
    from router.triage.config import load_stop_words
    from router.triage.parallel import WorkerFailed, auto_workers, predict_chunks, split
    from router.triage.store import load_artifact

    try:
        classifier = load_artifact(model, "classifier", TriageClassifier)
        classifier.hide_terms(load_stop_words(settings_or_exit().data_dir / "triage" / "stopwords.yml"))
        texts, _ = read_texts(data, text_column)
        usable = [text for text in texts if text]
        workers = workers or auto_workers(len(usable))
        predictions = (
            prediction
            for chunk in predict_chunks(classifier, split(usable, workers, most=BATCH), workers)
            for prediction in chunk
        )
        for text in texts:
            # Empty records keep their line so output lines match input records one to one.
            record = vars(next(predictions)) if text else {"label": None, "error": "empty text"}
            sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
    except (InvalidInput, WorkerFailed) as error:
        _fail(error)


@app.command("train-default")
def train_default(
    out: Path = typer.Option(None, help="Model directory (default: models/triage)."),
) -> None:
    """Train the shipped default model: our bilingual complaints plus the sentiment model."""
    from router.triage.training import train_default_model

    settings = settings_or_exit()
    try:
        metrics = train_default_model(
            out or settings.models_dir / "triage",
            settings.data_dir,
            settings.shared_data_dir,
            project_dir=settings.project_dir,
        )
    except InvalidInput as error:
        _fail(error)
    typer.echo(json.dumps({key: value for key, value in metrics.items() if key != "labels"}, ensure_ascii=False))


@app.command("convert-clinc")
def convert_clinc_command(
    source: Path = typer.Argument(..., help="CLINC150 JSON (keys train, val, oos_train, oos_val)."),
    out: Path = typer.Option(..., help="CSV to write with columns text,label."),
    part: list[str] = typer.Option(["train", "oos_train"], help="Parts to include (repeatable)."),
) -> None:
    """Turn CLINC150's JSON into a text,label CSV that 'train' reads; oos examples keep the label 'oos'."""
    try:
        rows = convert_clinc(source, out, tuple(part))
    except InvalidInput as error:
        _fail(error)
    typer.echo(f"wrote {rows} rows to {out}")
