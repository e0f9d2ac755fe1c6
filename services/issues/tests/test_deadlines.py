"""The worker's timers, driven by an injected clock: overdue issues escalate, unrated ones close."""

from __future__ import annotations

from datetime import timedelta

import pytest

from linli_issues.definition import definition, timers
from linli_kit.db import Database

pytestmark = pytest.mark.integration


@pytest.fixture
def run_timer(env, clock):
    settings = definition.settings()
    database = Database(settings.database_url)
    by_name = {t.name: t for t in timers(settings, database, clock=clock)}
    yield lambda name: by_name[name].run()
    database.dispose()


def test_the_timer_escalates_an_overdue_issue_one_tier_at_a_time_up_to_the_city(
    client, tokens, report, outbox, clock, run_timer
):
    issue, _ = report(urgency="high")  # repairs, high: 120 hours, starts in the compound
    url = f"/{issue['id']}"
    staff = tokens.staff()
    client.post(f"{url}/status", json={"status": "accepted"}, headers=staff)

    clock.advance(hours=119)
    run_timer("escalate-overdue")
    assert client.get(url, headers=staff).get_json()["tier"] == "compound"
    assert outbox("issues.issue.overdue") == []

    clock.advance(hours=2)
    run_timer("escalate-overdue")
    now = clock.now
    body = client.get(url, headers=staff).get_json()
    assert body["tier"] == "community" and body["overdue"] is False
    assert body["due_at"] == (now + timedelta(hours=120)).isoformat()  # a fresh deadline at the new tier
    [(_, overdue)] = outbox("issues.issue.overdue")
    assert overdue["tier"] == "compound" and overdue["actor_id"] is None
    [(_, escalated)] = outbox("issues.issue.escalated")
    assert (escalated["from_tier"], escalated["tier"], escalated["automatic"]) == ("compound", "community", True)
    assert escalated["revision"] > overdue["revision"]

    run_timer("escalate-overdue")  # nothing is overdue any more: no new events
    assert len(outbox("issues.issue.escalated")) == 1

    for expected in ("street", "city"):
        clock.advance(hours=121)
        run_timer("escalate-overdue")
        assert client.get(url, headers=staff).get_json()["tier"] == expected
    # At the city tier there is nowhere higher: reported overdue once, then left alone.
    clock.advance(hours=121)
    run_timer("escalate-overdue")
    clock.advance(hours=500)
    run_timer("escalate-overdue")
    body = client.get(url, headers=tokens.admin()).get_json()
    assert body["tier"] == "city" and body["overdue"] is True
    assert len(outbox("issues.issue.overdue")) == 4
    assert [d["tier"] for _, d in outbox("issues.issue.escalated")] == ["community", "street", "city"]
    timeline = client.get(f"{url}/updates", headers=staff).get_json()
    automatic = [e for e in timeline if e["kind"] == "escalation"]
    assert len(automatic) == 3 and all(e["data"]["automatic"] for e in automatic)
    # The reason the timer wrote reads in the language of the answer (English in these tests).
    passed = [e["data"]["message"]["params"]["at"] for e in automatic]
    assert [e["body"] for e in automatic] == [f"deadline passed at {at}" for at in passed]
    assert passed[0] == issue["due_at"]
    in_chinese = client.get(f"{url}/updates", headers=staff | {"Accept-Language": "zh"}).get_json()
    assert [e["body"] for e in in_chinese if e["kind"] == "escalation"] == [f"已超过办理期限（{at}）" for at in passed]


def test_finished_issues_never_escalate(client, tokens, report, outbox, clock, run_timer):
    issue, _ = report(urgency="urgent")
    client.post(
        f"/{issue['id']}/status", json={"status": "rejected", "reason": "private matter"}, headers=tokens.staff()
    )
    clock.advance(days=60)
    run_timer("escalate-overdue")
    assert outbox("issues.issue.escalated") == [] and outbox("issues.issue.overdue") == []


def test_a_resolved_issue_nobody_rates_closes_after_the_configured_time(
    client, tokens, report, outbox, clock, run_timer
):
    issue, reporter = report()
    rated, _ = report(title="Gate light broken")
    staff = tokens.staff()
    for subject in (issue, rated):
        client.post(f"/{subject['id']}/status", json={"status": "accepted"}, headers=staff)
        client.post(f"/{subject['id']}/status", json={"status": "resolved", "summary": "fixed"}, headers=staff)
    client.post(f"/{rated['id']}/rating", json={"rating": 5}, headers=reporter)  # not its reporter: refused
    clock.advance(days=6)
    run_timer("close-unrated")
    assert client.get(f"/{issue['id']}", headers=staff).get_json()["status"] == "resolved"
    clock.advance(days=1, minutes=1)  # default: seven days
    run_timer("close-unrated")
    body = client.get(f"/{issue['id']}", headers=staff).get_json()
    assert body["status"] == "closed" and body["rating"] is None
    closed = [d for _, d in outbox("issues.issue.closed")]
    assert {d["issue_id"] for d in closed} == {issue["id"], rated["id"]}
    assert all(d["rating"] is None and d["actor_id"] is None for d in closed)
    timeline = client.get(f"/{issue['id']}/updates", headers=staff | {"Accept-Language": "zh"}).get_json()
    assert timeline[-1]["kind"] == "status" and timeline[-1]["body"] == "未评价，已自动关闭"
    timeline = client.get(f"/{issue['id']}/updates", headers=staff).get_json()
    assert timeline[-1]["body"] == "closed automatically: no rating"


def test_the_auto_close_delay_is_configurable(monkeypatch, client, tokens, report, clock, env):
    monkeypatch.setenv("ISSUES_AUTO_CLOSE_DAYS", "1")
    settings = definition.settings()
    database = Database(settings.database_url)
    close = {t.name: t for t in timers(settings, database, clock=clock)}["close-unrated"]
    issue, _ = report()
    staff = tokens.staff()
    client.post(f"/{issue['id']}/status", json={"status": "accepted"}, headers=staff)
    client.post(f"/{issue['id']}/status", json={"status": "resolved", "summary": "fixed"}, headers=staff)
    clock.advance(hours=25)
    close.run()
    assert client.get(f"/{issue['id']}", headers=staff).get_json()["status"] == "closed"
    database.dispose()


def test_the_deadline_pass_runs_on_demand_as_of_a_given_instant(client, tokens, report, outbox, capsys, env):
    issue, _ = report(urgency="urgent")  # repairs, urgent: 24 hours from 2 November 01:00 UTC
    settings = definition.settings()
    database = Database(settings.database_url)
    run = definition.commands["run-deadlines"]
    assert run(settings, database, ["--as-of", "2026-11-03T00:59:00+00:00"]) == 0
    assert "0 overdue issue(s)" in capsys.readouterr().out
    assert run(settings, database, ["--as-of", "2026-11-03T09:30:00+08:00"]) == 0
    assert "1 overdue issue(s)" in capsys.readouterr().out
    assert client.get(f"/{issue['id']}", headers=tokens.staff()).get_json()["tier"] == "community"
    assert [d["automatic"] for _, d in outbox("issues.issue.escalated")] == [True]
    with pytest.raises(SystemExit):
        run(settings, database, ["--as-of", "2026-11-03T09:30:00"])  # no offset: refused
    database.dispose()
