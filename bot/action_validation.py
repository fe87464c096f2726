"""Validate action-server responses against a JSON Schema validator built once, not once per custom action.

Rasa 3.6 checks every action-server response with ``jsonschema.validate``, which first re-validates Rasa's own
response schema against the draft 2020-12 meta-schema: 40–75 ms of CPU on every custom action call, more than the
rest of the turn together (BENCHMARKS.md, Bot turn latency). Rasa offers no setting for it, so the Rasa server's
start-up (``bot.patches.install``) calls :func:`install` to swap in the same validation (same schema, same validator
class, same best-match error and message) with the schema checked once per process. A valid response, the usual
case, is checked against its events' own types only (``_is_valid``); the full schema runs only to describe an
invalid one.
"""

from __future__ import annotations

import copy
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


@lru_cache(maxsize=1)
def _event_validators() -> tuple[Any, dict[str, Any]]:
    """The response schema without the events' ``oneOf``, and each event type's ``oneOf`` branch on its own.

    Every branch pins ``event`` to one constant, so an event matches "exactly one" branch precisely when it is
    valid under the branch of its own type: checking that one instead of all 23 gives the same answer.
    """
    schema = copy.deepcopy(RemoteAction.action_response_format_spec())
    items = schema["properties"]["events"]["items"]
    branches = items.pop("oneOf")
    validator_class = validators.validator_for(schema)
    by_type = {branch["properties"]["event"]["const"]: validator_class(branch) for branch in branches}
    return validator_class(schema), by_type


def _is_valid(result: Any) -> bool:
    outline, by_type = _event_validators()
    if not outline.is_valid(result):
        return False
    for event in result.get("events") or ():
        branch = by_type.get(event["event"])
        if branch is None or not branch.is_valid(event):
            return False
    return True


def validate_action_result(action: RemoteAction, result: dict[str, Any]) -> bool:
    """What ``RemoteAction._validate_action_result`` does, without re-checking the schema on every call."""
    if _is_valid(result):
        return True
    # Only an invalid response pays for the whole schema, which also finds Rasa's exact error.
    error = exceptions.best_match(response_validator().iter_errors(result))
    if error is not None:
        error.message += _INVALID_RESPONSE_HINT
        raise error
    return True


def install() -> None:
    """Make every custom action call in this process use the prebuilt validator (idempotent)."""
    RemoteAction._validate_action_result = validate_action_result
