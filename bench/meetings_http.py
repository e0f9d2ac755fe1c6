"""Meetings over HTTP against a bare Flask + SQLAlchemy baseline doing the same writes, in one run.

Two operations, each measured on the meetings service and on the baseline, on the local
PostgreSQL, in this process through each app's WSGI interface (Flask's test client), so both pay
the same (no) network cost and the figures compare application work:

1. **Schedule a meeting with 20 agenda items and 50 participants**: one POST.
   Ours: token verification, marshmallow validation, the domain, the ORM, the scheduled event in
   the outbox, one transaction. Baseline: `request.get_json()` and three Core INSERTs
   (meeting, 20 items, 50 participants) in one transaction.
2. **Record a decision with 50 votes**: open a motion, 50 members present each cast a vote (one
   POST per vote, as people vote from their phones), record it. 52 requests per decision.
   Ours: every vote checked (member present, voting role under the community's rules, not voted
   yet), the record counts under the rules and writes `meetings.decision.recorded` to the outbox.
   Baseline: insert the motion; per vote check the voter is checked in and insert the vote
   (primary key refuses a second one); record = count by choice and update the motion.

Prints operations per second for each, and the ratio ours / baseline (DESIGN target for creates:
at least 60 %).

    .venv/bin/python bench/meetings_http.py [--meetings 200] [--decisions 20]
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from datetime import UTC, datetime, timedelta

from flask import Flask, jsonify, request
from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    create_engine,
    func,
    insert,
    select,
    update,
)

from linli_kit import migrations
from linli_kit.auth import TokenSigner
from linli_kit.keys import generate_keypair
from linli_kit.testing import infra

AGENDA_ITEMS = 20
PARTICIPANTS = 50


# --- the baseline: bare Flask + SQLAlchemy Core ---------------------------------------------------
bare = MetaData()
b_meetings = Table(
    "meetings",
    bare,
    Column("id", String(36), primary_key=True),
    Column("community_id", String(36), nullable=False, index=True),
    Column("meeting_type", String(40)),
    Column("title", String(300)),
    Column("place", String(300)),
    Column("starts_at", DateTime(timezone=True)),
    Column("ends_at", DateTime(timezone=True)),
    Column("public", Boolean),
    Column("status", String(20)),
)
b_agenda = Table(
    "agenda_items",
    bare,
    Column("id", String(36), primary_key=True),
    Column("meeting_id", String(36), index=True),
    Column("position", Integer),
    Column("title", String(300)),
    Column("duration_minutes", Integer),
    Column("issue_id", String(36)),
)
b_participants = Table(
    "participants",
    bare,
    Column("id", String(36), primary_key=True),
    Column("meeting_id", String(36), index=True),
    Column("user_id", String(36)),
    Column("role", String(40)),
    Column("checked_in", Boolean),
)
b_decisions = Table(
    "decisions",
    bare,
    Column("id", String(36), primary_key=True),
    Column("meeting_id", String(36)),
    Column("motion", Text),
    Column("outcome", String(20)),
    Column("votes_for", Integer),
    Column("votes_against", Integer),
    Column("abstentions", Integer),
)
b_votes = Table(
    "votes",
    bare,
    Column("decision_id", String(36)),
    Column("voter_id", String(36)),
    Column("choice", String(10)),
    PrimaryKeyConstraint("decision_id", "voter_id"),
)


def baseline_app(url: str) -> Flask:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1), pool_size=5)
    bare.create_all(engine)
    app = Flask("baseline")

    @app.post("/")
    def schedule():
        body = request.get_json()
        meeting_id = str(uuid.uuid4())
        with engine.begin() as conn:
            conn.execute(
                insert(b_meetings).values(
                    id=meeting_id,
                    community_id=body["community_id"],
                    meeting_type=body["meeting_type"],
                    title=body["title"],
                    place=body["place"],
                    starts_at=datetime.fromisoformat(body["starts_at"]),
                    ends_at=datetime.fromisoformat(body["ends_at"]),
                    public=True,
                    status="scheduled",
                )
            )
            if body["agenda"]:
                conn.execute(
                    insert(b_agenda),
                    [
                        {"id": str(uuid.uuid4()), "meeting_id": meeting_id, "position": n, **item}
                        for n, item in enumerate(body["agenda"], start=1)
                    ],
                )
            if body["participants"]:
                conn.execute(
                    insert(b_participants),
                    [
                        {"id": str(uuid.uuid4()), "meeting_id": meeting_id, "checked_in": False, **p}
                        for p in body["participants"]
                    ],
                )
        return jsonify({"id": meeting_id}), 201

    @app.get("/")
    def list_page():
        community_id = request.args["community_id"]
        limit = int(request.args.get("page_size", 20))
        with engine.connect() as conn:
            where = b_meetings.c.community_id == community_id
            total = conn.scalar(select(func.count()).select_from(b_meetings).where(where))
            meetings = [
                dict(r._mapping)
                for r in conn.execute(select(b_meetings).where(where).order_by(b_meetings.c.starts_at).limit(limit))
            ]
            ids = [m["id"] for m in meetings]
            agenda: dict[str, list] = {i: [] for i in ids}
            for row in conn.execute(
                select(b_agenda).where(b_agenda.c.meeting_id.in_(ids)).order_by(b_agenda.c.position)
            ):
                agenda[row.meeting_id].append({"id": row.id, "title": row.title, "position": row.position})
            counts = dict(
                conn.execute(
                    select(b_participants.c.meeting_id, func.count())
                    .where(b_participants.c.meeting_id.in_(ids))
                    .group_by(b_participants.c.meeting_id)
                ).all()
            )
        for m in meetings:
            m["agenda"] = agenda[m["id"]]
            m["participants"] = counts.get(m["id"], 0)
        response = jsonify(meetings)
        response.headers["X-Total"] = str(total)
        return response

    @app.post("/<meeting_id>/check-in-all")
    def check_in_all(meeting_id):
        with engine.begin() as conn:
            conn.execute(
                update(b_participants).where(b_participants.c.meeting_id == meeting_id).values(checked_in=True)
            )
        return jsonify({}), 200

    @app.post("/<meeting_id>/motions")
    def motion(meeting_id):
        decision_id = str(uuid.uuid4())
        with engine.begin() as conn:
            conn.execute(
                insert(b_decisions).values(id=decision_id, meeting_id=meeting_id, motion=request.get_json()["motion"])
            )
        return jsonify({"id": decision_id}), 201

    @app.post("/<meeting_id>/motions/<decision_id>/votes")
    def vote(meeting_id, decision_id):
        voter = request.headers["X-User"]
        with engine.begin() as conn:
            present = conn.scalar(
                select(b_participants.c.checked_in).where(
                    b_participants.c.meeting_id == meeting_id, b_participants.c.user_id == voter
                )
            )
            if not present:
                return jsonify({"error": "not present"}), 409
            conn.execute(
                insert(b_votes).values(decision_id=decision_id, voter_id=voter, choice=request.get_json()["choice"])
            )
        return jsonify({}), 201

    @app.post("/<meeting_id>/motions/<decision_id>/record")
    def record(meeting_id, decision_id):
        with engine.begin() as conn:
            counts = dict(
                conn.execute(
                    select(b_votes.c.choice, func.count())
                    .where(b_votes.c.decision_id == decision_id)
                    .group_by(b_votes.c.choice)
                ).all()
            )
            outcome = "adopted" if counts.get("for", 0) > counts.get("against", 0) else "rejected"
            conn.execute(
                update(b_decisions)
                .where(b_decisions.c.id == decision_id)
                .values(
                    outcome=outcome,
                    votes_for=counts.get("for", 0),
                    votes_against=counts.get("against", 0),
                    abstentions=counts.get("abstain", 0),
                )
            )
        return jsonify({"outcome": outcome}), 200

    return app


# --- ours -----------------------------------------------------------------------------------------
def meetings_app(url: str, public_key: str, community_id: str) -> Flask:
    os.environ.update(
        {
            "DATABASE_URL": url,
            "JWT_PUBLIC_KEY": public_key,
            "LOG_LEVEL": "WARNING",
            "LOG_JSON": "false",
        }
    )
    from linli_kit.config import load_settings
    from linli_kit.db import Database
    from linli_meetings.adapters.tables import replica
    from linli_meetings.definition import definition
    from linli_meetings.entrypoints.web import create_app

    migrations.upgrade(definition.migrations_dir, url)
    settings = load_settings("meetings")
    database = Database(settings.database_url)
    # The community is in the directory replica, as it would be in production.
    with database.transaction() as session:
        street_id = str(uuid.uuid4())
        session.execute(replica.streets.insert().values(street_id=street_id, name="Chengqu", revision=1))
        session.execute(
            replica.communities.insert().values(community_id=community_id, street_id=street_id, name="Xihu", revision=1)
        )
    return create_app(settings, database)


def meeting_body(community_id: str, voters: list[str]) -> dict:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    return {
        "community_id": community_id,
        "meeting_type": "bench",
        "title": "Bench meeting in the courtyard of Building 3",
        "place": "Courtyard, Building 3",
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=2)).isoformat(),
        "agenda": [
            {
                "title": f"Item {n}: the roof, the wall, the parking",
                "duration_minutes": 5,
                "issue_id": str(uuid.uuid4()),
            }
            for n in range(AGENDA_ITEMS)
        ],
        "participants": [{"role": "resident_representative", "user_id": v} for v in voters],
    }


def compare(ours, theirs, count: int, rounds: int = 5) -> tuple[float, float]:
    """Operations per second of each, measured in alternating rounds so that load from other
    processes on the shared machine falls on both sides alike."""
    ours()  # warm up: pools, caches, first compiled statements
    theirs()
    spent = [0.0, 0.0]
    per_round = max(1, count // rounds)
    for _ in range(rounds):
        for side, operation in enumerate((ours, theirs)):
            started = time.perf_counter()
            for _ in range(per_round):
                operation()
            spent[side] += time.perf_counter() - started
    done = per_round * rounds
    return done / spent[0], done / spent[1]


def expect(response, status: int):
    if response.status_code != status:
        raise RuntimeError(f"{response.request.path}: {response.status_code} {response.get_data(as_text=True)[:300]}")
    return response.get_json()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--meetings", type=int, default=200, help="meetings scheduled (and list pages read) per side")
    parser.add_argument("--decisions", type=int, default=20, help="decisions of 50 votes recorded per side")
    args = parser.parse_args()

    admin_url, _ = infra.find_postgres()
    databases = infra.PostgresDatabases(admin_url, infra.new_run_id())
    private, public = generate_keypair()
    signer = TokenSigner(private, issuer="linli-gateway")
    community_id = str(uuid.uuid4())
    staff = {
        "Authorization": "Bearer "
        + signer.sign(user_id=str(uuid.uuid4()), role="community_staff", community_ids=[community_id])
    }
    voters = [str(uuid.uuid4()) for _ in range(PARTICIPANTS)]
    voter_headers = {
        v: {
            "Authorization": "Bearer " + signer.sign(user_id=v, role="resident", community_ids=[community_id]),
            "X-User": v,
        }
        for v in voters
    }
    try:
        ours = meetings_app(databases.create("bench_meetings"), public, community_id).test_client()
        base = baseline_app(databases.create("bench_baseline")).test_client()
        body = meeting_body(community_id, voters)

        ours_schedule, base_schedule = compare(
            lambda: expect(ours.post("/", json=body, headers=staff), 201),
            lambda: expect(base.post("/", json=body), 201),
            args.meetings,
        )

        # The DESIGN targets' own shapes: a plain create (no agenda, no people) and a list page.
        plain = {k: v for k, v in body.items() if k not in ("agenda", "participants")}
        ours_create, base_create = compare(
            lambda: expect(ours.post("/", json=plain, headers=staff), 201),
            lambda: expect(base.post("/", json=plain | {"agenda": [], "participants": []}), 201),
            args.meetings,
        )
        page = {"community_id": community_id, "page_size": 20}
        ours_list, base_list = compare(
            lambda: expect(ours.get("/", query_string=page, headers=staff), 200),
            lambda: expect(base.get("/", query_string=page), 200),
            args.meetings,
        )

        # One meeting in progress with everyone checked in; each decision: motion, 50 votes, record.
        meeting = expect(ours.post("/", json=body, headers=staff), 201)
        expect(ours.post(f"/{meeting['id']}/start", headers=staff), 200)
        for p in expect(ours.get(f"/{meeting['id']}/participants", headers=staff), 200):
            expect(ours.post(f"/{meeting['id']}/participants/{p['id']}/check-in", headers=staff), 200)
        base_meeting = expect(base.post("/", json=body), 201)
        expect(base.post(f"/{base_meeting['id']}/check-in-all"), 200)

        def decide(client, meeting_id: str, headers: dict) -> None:
            motion = expect(
                client.post(f"/{meeting_id}/motions", json={"motion": "Repair the roof"}, headers=headers), 201
            )
            url = f"/{meeting_id}/motions/{motion['id']}"
            for n, voter in enumerate(voters):
                choice = "for" if n % 3 else "against"
                expect(client.post(f"{url}/votes", json={"choice": choice}, headers=voter_headers[voter]), 201)
            expect(client.post(f"{url}/record", headers=headers), 200)

        ours_decide, base_decide = compare(
            lambda: decide(ours, meeting["id"], staff), lambda: decide(base, base_meeting["id"], {}), args.decisions
        )

        print(
            f"\nMeetings over HTTP (in-process WSGI, PostgreSQL), "
            f"{args.meetings} meetings and {args.decisions} decisions per side"
        )
        print(f"{'operation':<52}{'ours /s':>10}{'bare /s':>10}{'ratio':>8}")
        rows = (
            (f"schedule: {AGENDA_ITEMS} agenda items, {PARTICIPANTS} participants", ours_schedule, base_schedule),
            ("schedule: no agenda, no participants (plain create)", ours_create, base_create),
            ("list page: 20 meetings with agenda and head counts", ours_list, base_list),
            (f"decision: motion + {PARTICIPANTS} votes + record", ours_decide, base_decide),
            ("  (requests in decisions)", ours_decide * (PARTICIPANTS + 2), base_decide * (PARTICIPANTS + 2)),
        )
        for name, mine, theirs in rows:
            print(f"{name:<52}{mine:>10.1f}{theirs:>10.1f}{mine / theirs:>8.2f}")
        print("targets (DESIGN section 7): list page >= 0.70, create >= 0.60 of the bare endpoint")
    finally:
        databases.drop_all()


if __name__ == "__main__":
    main()
