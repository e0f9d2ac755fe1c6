"""Request-scoped values that outlive the framework that set them (web request, event handling)."""

from __future__ import annotations

from contextvars import ContextVar

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
