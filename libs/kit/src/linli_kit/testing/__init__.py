"""Test support shared by every service's tests and the cross-service tests (a pytest plugin)."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient


def english_test_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every Flask test client made while the patch holds asks for English (`Accept-Language: en`)
    unless a request says otherwise: tests that read the API's messages read their English ids;
    Chinese, the default, is tested on its own (with its header, or none)."""
    original = FlaskClient.__init__

    def init(self: FlaskClient, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)
        self.environ_base.setdefault("HTTP_ACCEPT_LANGUAGE", "en")

    monkeypatch.setattr(FlaskClient, "__init__", init)
