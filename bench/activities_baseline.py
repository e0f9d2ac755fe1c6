"""The bare Flask + SQLAlchemy baseline for bench/activities_http.py: one endpoint that registers a
person for an activity doing the same database work as the service (lock the activity row, look
for an earlier registration, insert the registration, move the counters, commit), with none of the
platform (no token check, no schemas, no outbox, no error format).

    gunicorn -c python:linli_kit.gunicorn_conf --pythonpath bench 'activities_baseline:create_app()'
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime

from flask import Flask, jsonify, request
from sqlalchemy import create_engine, text


def create_app() -> Flask:
    app = Flask("baseline")
    url = os.environ["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://", 1)
    engine = create_engine(url, pool_size=5, max_overflow=5)

    @app.post("/<activity_id>/registrations")
    def register(activity_id: str):
        user_id = request.headers["X-User"]
        party = int((request.get_json(silent=True) or {}).get("party_size", 1))
        now = datetime.now(UTC)
        with engine.begin() as conn:
            row = conn.execute(
                text(
                    "SELECT capacity, confirmed_places, waiting_parties, waitlist_counter FROM activities "
                    "WHERE id = :id FOR UPDATE"
                ),
                {"id": activity_id},
            ).one()
            if conn.execute(
                text("SELECT 1 FROM registrations WHERE activity_id = :a AND user_id = :u"),
                {"a": activity_id, "u": user_id},
            ).first():
                return jsonify({"error": "already registered"}), 409
            if row.waiting_parties == 0 and row.confirmed_places + party <= row.capacity:
                status, seq = "confirmed", None
                conn.execute(
                    text("UPDATE activities SET confirmed_places = confirmed_places + :p WHERE id = :id"),
                    {"p": party, "id": activity_id},
                )
            else:
                status, seq = "waitlisted", row.waitlist_counter + 1
                conn.execute(
                    text(
                        "UPDATE activities SET waiting_parties = waiting_parties + 1, waitlist_counter = :s "
                        "WHERE id = :id"
                    ),
                    {"s": seq, "id": activity_id},
                )
            registration_id = str(uuid.uuid4())
            conn.execute(
                text(
                    "INSERT INTO registrations (id, activity_id, user_id, community_id, party_size, status, "
                    "waitlist_seq, registered_by, created_at, updated_at) VALUES (:id, :a, :u, :c, :p, :s, :q, :u, "
                    ":now, :now)"
                ),
                {
                    "id": registration_id,
                    "a": activity_id,
                    "u": user_id,
                    "c": request.headers["X-Community"],
                    "p": party,
                    "s": status,
                    "q": seq,
                    "now": now,
                },
            )
        return jsonify({"id": registration_id, "status": status, "waitlist_seq": seq}), 201

    return app
