"""Validate action-server responses against a JSON Schema validator built once, not once per custom action.

Rasa 3.6 checks every action-server response with ``jsonschema.validate``, which first re-validates Rasa's own
response schema against the draft 2020-12 meta-schema: 40–75 ms of CPU on every custom action call, more than the
rest of the turn together (BENCHMARKS.md, Bot turn latency). Rasa offers no setting for it, so kefu's Rasa-side
extensions call :func:`install` to swap in the same validation (same schema, same validator class, same best-match
error and message) with the schema checked once per process.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jsonschema import exceptions, validators
from rasa.core.actions.action import RemoteAction
from rasa.shared.constants import DOCS_BASE_URL

_INVALID_RESPONSE_HINT = (
    ". Failed to validate Action server response from API, make sure your response from the Action endpoint is "
    f"valid. For more information about the format visit {DOCS_BASE_URL}/custom-actions"
)


@lru_cache(maxsize=1)
def response_validator() -> Any:
    """The validator for Rasa's action response schema, the schema itself checked against its meta-schema once."""
    schema = RemoteAction.action_response_format_spec()
    validator_class = validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)


def validate_action_result(action: RemoteAction, result: dict[str, Any]) -> bool:
    """What ``RemoteAction._validate_action_result`` does, without re-checking the schema on every call."""
    error = exceptions.best_match(response_validator().iter_errors(result))
    if error is not None:
        error.message += _INVALID_RESPONSE_HINT
        raise error
    return True


def install() -> None:
    """Make every custom action call in this process use the prebuilt validator (idempotent)."""
    RemoteAction._validate_action_result = validate_action_result  # type: ignore[method-assign]
