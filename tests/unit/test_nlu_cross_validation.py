"""The CV harness replays the FallbackClassifier's rule on recorded rankings exactly as the deployed bot applies it."""

from __future__ import annotations

from benchmarks.nlu_cross_validation import Prediction, summarise


def prediction(target: str, ranking: tuple[tuple[str, float], ...], deployed: str) -> Prediction:
    return Prediction(text="t", target=target, language="en", deployed=deployed, ranking=ranking, refused=False)


def test_the_threshold_replay_counts_a_low_confidence_right_guess_only_below_the_threshold() -> None:
    unsure_right = prediction("greet", (("greet", 0.28), ("thanks", 0.1)), deployed="nlu_fallback")
    sure_right = prediction("thanks", (("thanks", 0.9), ("greet", 0.05)), deployed="thanks")
    figures = summarise({0: [unsure_right, sure_right]}, threshold=0.3, ambiguity=0.1)
    by_threshold = figures["macro_f1_deployed_by_threshold_at_ambiguity_0.1"]
    assert by_threshold["0.25"] == 1.0  # 0.28 is acted on below a 0.25 threshold: both right
    assert by_threshold["0.3"] < 1.0  # the configured threshold sends it to the fallback, as the model did
    assert figures["replay_matches_model"]
