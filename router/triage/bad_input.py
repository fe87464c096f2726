"""Messages with nothing to classify: empty, oversized, wordless, markup, or in a script kefu does not serve.

Plain Python so both sides can ask without loading Rasa's NLU stack: the NLU pipeline's ``InputGuard``
(``bot/nlu/input_guard.py``) sends such messages to the fallback, and ``action_nlu_fallback`` chooses
``utter_bad_input`` over ``utter_ask_rephrase`` for them.
"""

from __future__ import annotations

import re
import unicodedata

# A real customer message is far shorter; anything longer is pasted logs or an attack, not a question to classify.
MAX_MESSAGE_CHARACTERS = 2000
WORD = re.compile(r"[^\W_]", re.UNICODE)
TERMINAL_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
MARKUP = re.compile(r"<\s*/?\s*[A-Za-z][^>]*>")
UNSERVED_SCRIPT = re.compile(r"[\u3040-\u30ff\uac00-\ud7af\u0400-\u04ff\u0600-\u06ff\u0e00-\u0e7f\u0900-\u097f]")


def bad_input_reason(text: str | None) -> str | None:
    """Why a message cannot be understood ('empty', 'too_long', 'no_words', 'markup', 'other_language'), or None."""
    if not text or not text.strip():
        return "empty"
    if len(text) > MAX_MESSAGE_CHARACTERS:
        return "too_long"
    printable = "".join(ch for ch in TERMINAL_ESCAPE.sub("", text) if unicodedata.category(ch)[0] != "C")
    if not WORD.search(printable):
        return "no_words"
    if MARKUP.search(text):
        return "markup"
    if UNSERVED_SCRIPT.search(text):
        return "other_language"
    return None
