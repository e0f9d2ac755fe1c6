"""The issues worker consumes the meetings' events in batches of 1,000 by default (its handlers
cost a fixed number of statements per batch); the environment still decides when set."""

from __future__ import annotations

from linli_issues.definition import definition


def test_the_issues_worker_takes_batches_of_a_thousand_by_default(monkeypatch) -> None:
    monkeypatch.delenv("EVENTS_BATCH_SIZE", raising=False)
    monkeypatch.delenv("EVENTS_PREFETCH", raising=False)
    settings = definition.settings()
    assert (settings.consumer_batch_size, settings.prefetch) == (1000, 2000)


def test_the_environment_still_sets_the_batch(monkeypatch) -> None:
    monkeypatch.setenv("EVENTS_BATCH_SIZE", "250")
    monkeypatch.setenv("EVENTS_PREFETCH", "500")
    settings = definition.settings()
    assert (settings.consumer_batch_size, settings.prefetch) == (250, 500)
