"""Errors the service layer raises; entrypoints map them to HTTP statuses or CLI messages."""


class KefuError(Exception):
    """Base of every error a user can be told about in one line."""


class NotFound(KefuError):
    """The thing asked for does not exist (HTTP 404)."""


class Conflict(KefuError):
    """The thing changed under the caller or is in the wrong state (HTTP 409)."""


class Forbidden(KefuError):
    """The caller may not do this (HTTP 403)."""


class InvalidInput(KefuError):
    """The input is empty, too large or malformed (HTTP 422)."""
