"""The issues per community and status (`issue_status_counts`), kept by the counts' hook in the
writers' shards: they equal a COUNT of the issues on random histories, and a list page's total read
from them equals the count it replaces; folding and rebuilding change no sum; a writer never waits
for another's commit on a count row."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text

from linli_issues.adapters import counters
from linli_issues.adapters.repository import Scope, _counted_per_status
from linli_issues.adapters.tables import issue_month_counts, issue_status_counts, issues
from linli_issues.definition import definition, timers
from linli_issues.domain.model import STATUSES, Issue
from linli_issues.service_layer.unit_of_work import IssuesUnitOfWork

START = datetime(2026, 10, 1, tzinfo=UTC)


def _new_issue(community_id: str, rng: random.Random) -> Issue:
    return Issue(
        community_id=community_id,
        title="t",
        description="d",
        category="other",
        urgency="normal",
        tier="community",
        reporter_id=str(uuid.uuid4()),
        created_at=START + timedelta(hours=rng.uniform(0, 24 * 60)),
    )


def _write_history(database, communities: list[str], rng: random.Random) -> None:
    """Issues reported, moved between statuses and communities, some deleted, some in savepoints
    rolled back, in transactions of a few changes each."""
    ids: list[str] = []
    for _ in range(40):
        with IssuesUnitOfWork(database) as uow:
            for _ in range(rng.randint(1, 4)):
                step = rng.random()
                if step < 0.4 or not ids:
                    issue = _new_issue(rng.choice(communities), rng)
                    uow.issues.add(issue)
                    ids.append(issue.id)
                    continue
                issue = uow.issues.get(rng.choice(ids), for_update=True)
                if issue is None:
                    continue
                if step < 0.75:
                    issue.status = rng.choice(STATUSES)
                elif step < 0.85:
                    issue.community_id = rng.choice(communities)
                elif step < 0.92:
                    uow.session.delete(issue)
                else:
                    savepoint = uow.session.begin_nested()
                    issue.status = rng.choice(STATUSES)
                    uow.session.flush()
                    savepoint.rollback()
            uow.commit()


def _per_status(session) -> dict[tuple[str, str], int]:
    c = issue_status_counts.c
    rows = session.execute(select(c.community_id, c.status, func.sum(c.count)).group_by(c.community_id, c.status))
    return {(community, status): int(n) for community, status, n in rows if n}


def _counted(session) -> dict[tuple[str, str], int]:
    i = issues.c
    rows = session.execute(select(i.community_id, i.status, func.count()).group_by(i.community_id, i.status))
    return {(community, status): int(n) for community, status, n in rows}


@pytest.mark.parametrize("env", ["sqlite", "postgresql"], indirect=True)
@pytest.mark.parametrize("seed", [1, 2])
def test_issues_per_status_equal_their_count_and_give_the_list_total(database, seed):
    rng = random.Random(seed)
    communities = [str(uuid.uuid4()) for _ in range(3)]
    _write_history(database, communities, rng)
    with database.transaction() as session:
        assert _per_status(session) == _counted(session)
    now = datetime(2027, 1, 1, tzinfo=UTC)
    with IssuesUnitOfWork(database) as uow:
        for community in communities:
            statuses: list[object] = [None, *STATUSES, ["reported", "accepted"]]
            for status in statuses:
                filters = {"community_id": community, "status": status}
                for scope in (Scope(everything=True), Scope(community_ids=(communities[0], community))):
                    assert _counted_per_status(scope, {name: filters.get(name) for name in ("community_id", "status")}
                                               | dict.fromkeys(_OTHER_FILTERS))  # fmt: skip
                    page, total = uow.issues.list(scope, offset=0, limit=5, filters=filters, now=now, summaries=True)
                    matching = [issues.c.community_id == community]
                    if isinstance(status, list):
                        matching.append(issues.c.status.in_(status))
                    elif status is not None:
                        matching.append(issues.c.status == status)
                    wanted = select(func.count()).select_from(issues).where(*matching)
                    assert total == uow.session.scalar(wanted), (community, status, scope)
                    first = select(issues.c.id).where(*matching).order_by(issues.c.created_at.desc(), issues.c.id)
                    assert [i.id for i in page] == list(uow.session.scalars(first.limit(5)))
    # Folding (PostgreSQL) and building them again change no sum.
    with database.transaction() as session:
        counters.fold(session.connection())
        assert _per_status(session) == _counted(session)
        counters.rebuild_statuses(session.connection())
        assert _per_status(session) == _counted(session)


_OTHER_FILTERS = ("tier", "category", "urgency", "assignee_type", "assignee_id", "street_id", "reporter_id",
                  "published", "overdue", "q", "created_from", "created_to")  # fmt: skip


def test_the_total_is_counted_where_the_read_model_does_not_say_it_exactly():
    given = {"community_id": "c", "status": "reported"} | dict.fromkeys(_OTHER_FILTERS)
    assert _counted_per_status(Scope(community_ids=("c",)), given)
    assert not _counted_per_status(Scope(community_ids=("d",), street_id="s"), given)  # c may be of street s, or not
    assert not _counted_per_status(Scope(community_ids=("c",), private_reader="u"), given)  # private ones hidden
    assert not _counted_per_status(Scope(everything=True), given | {"category": "parking"})
    assert not _counted_per_status(Scope(everything=True), given | {"overdue": False})
    assert not _counted_per_status(Scope(everything=True), given | {"community_id": ["c", "d"]})
    assert not _counted_per_status(Scope(everything=True), given | {"community_id": None})


@pytest.mark.parametrize("env", ["postgresql"], indirect=True)
def test_a_writer_adds_to_another_shard_while_one_holds_the_first(database):
    community = str(uuid.uuid4())
    rng = random.Random(3)
    holder = database.session()
    try:
        # Another writer, between its counts and its commit: it holds slot 0 and its shard's rows.
        holder.add(_new_issue(community, rng))
        holder.flush()
        counters._write_counts(holder)
        assert holder.scalar(select(func.sum(issue_status_counts.c.count))) == 1
        with database.transaction() as session:
            # Waiting for a lock would fail at once rather than wait for the holder's commit.
            session.execute(text("SET LOCAL lock_timeout = '50ms'"))
            session.add(_new_issue(community, rng))
        holder.commit()
    finally:
        holder.close()
    with database.transaction() as session:
        c = issue_status_counts.c
        assert sorted(session.execute(select(c.shard, c.count).where(c.community_id == community))) == [(0, 1), (1, 1)]
        raised = select(func.sum(issue_month_counts.c.raised)).where(issue_month_counts.c.community_id == community)
        assert session.scalar(raised) == 2
    # The worker's timer folds the shards into shard 0.
    fold = {t.name: t for t in timers(definition.settings(), database)}["fold-counts"]
    assert fold.run() > 0
    with database.transaction() as session:
        assert list(session.execute(select(c.shard, c.count).where(c.community_id == community))) == [(0, 2)]
        assert session.scalar(raised) == 2
        shards = select(func.count()).select_from(issue_month_counts).where(issue_month_counts.c.shard != 0)
        assert session.scalar(shards) == 0
