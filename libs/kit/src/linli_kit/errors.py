"""Errors a service core raises; the web layer turns each into its HTTP status. No framework here.

A message is an English message id, translated for the reader by the web layer (`linli_kit.i18n`,
Chinese by default). Values go in as named placeholders, never concatenated into the text, so the
translation can put them where its own grammar wants them:

    raise NotFound("issue {issue_id} not found", issue_id=issue_id)
    raise Invalid("bad photo", fields={"photo": [Text("larger than {limit} bytes", limit=limit)]})

A placeholder's value that is a code people read in words (a status, a meeting type) is given as
`Label(kind, code)`: the English text keeps the code, a translation shows the kind's label.
"""

from __future__ import annotations

from typing import Any


def N_(message: str) -> str:
    """Marks a message defined away from where it is raised (a table of field messages), so
    extraction finds it; returns it unchanged."""
    return message


def NC_(context: str, message: str) -> str:
    """Marks a label with its context (the kind of code it names); returns the message unchanged."""
    return message


class Label(str):
    """A code shown inside a message (`resolved`), read as its kind's label in a translation."""

    kind: str
    code: str

    def __new__(cls, kind: str, code: Any) -> Label:
        text = str(getattr(code, "value", code))
        label = super().__new__(cls, text)
        label.kind = kind
        label.code = text
        return label


class Text(str):
    """A message with named values: the English text as a string, and what translating it needs."""

    template: str
    params: dict[str, Any]

    def __new__(cls, template: str, **params: Any) -> Text:
        text = super().__new__(cls, template.format(**params) if params else template)
        text.template = template
        text.params = params
        return text


class ServiceError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, fields: dict[str, list[str]] | None = None, **params: Any) -> None:
        text = message if isinstance(message, Text) and not params else Text(str(message), **params)
        super().__init__(str(text))
        self.message = str(text)
        self.text = text
        self.fields = fields or {}


class Invalid(ServiceError):
    status = 422
    code = "validation_error"


class NotFound(ServiceError):
    status = 404
    code = "not_found"


class Forbidden(ServiceError):
    status = 403
    code = "forbidden"


class Unauthorized(ServiceError):
    status = 401
    code = "unauthorized"


class Conflict(ServiceError):
    status = 409
    code = "conflict"
