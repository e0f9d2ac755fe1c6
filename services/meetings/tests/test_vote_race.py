"""Votes cast while the chair records the motion, against the real web processes (gunicorn) on
PostgreSQL and on SQLite: every vote answered 201 is counted, every other is refused with 409."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import requests

pytestmark = pytest.mark.integration

VOTERS = 24
MOTIONS = 4
CHOICES = ("for", "against", "abstain")


class Api:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = requests.Session()

    def call(self, method: str, path: str, headers: dict, **kwargs: object) -> requests.Response:
        return self.http.request(method, self.base_url + path, headers=headers, timeout=60, **kwargs)


def bearer(token_signer, role: str, user_id: str, community_id: str) -> dict:
    token = token_signer.sign(user_id=user_id, role=role, community_ids=[community_id])
    return {"Authorization": f"Bearer {token}"}


def votes_while_recording(
    base_url: str, url: str, voters: dict[str, dict], staff: dict
) -> tuple[dict, requests.Response]:
    """Every voter votes at once on their own connection; the chair records the motion as soon as a
    third of them have been answered, the other votes still coming in."""
    answers: dict[str, requests.Response] = {}
    recorded: list[requests.Response] = []
    some_answered = threading.Event()
    gate = threading.Barrier(len(voters) + 1)
    lock = threading.Lock()

    def cast(n: int, user_id: str, headers: dict) -> None:
        own = Api(base_url)
        gate.wait()
        response = own.call("POST", f"{url}/votes", headers, json={"choice": CHOICES[n % 3]})
        with lock:
            answers[user_id] = response
            if len(answers) >= len(voters) // 3:
                some_answered.set()

    def record() -> None:
        own = Api(base_url)
        gate.wait()
        assert some_answered.wait(60)
        recorded.append(own.call("POST", f"{url}/record", staff))

    threads = [threading.Thread(target=cast, args=(n, u, h)) for n, (u, h) in enumerate(voters.items())]
    threads.append(threading.Thread(target=record))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(answers) == len(voters) and len(recorded) == 1
    return answers, recorded[0]


def test_a_vote_cast_while_the_motion_is_recorded_is_counted_or_refused(any_platform, token_signer):
    web = any_platform.start_web("meetings")
    api = Api(web.url)
    community = str(uuid.uuid4())
    staff = bearer(token_signer, "community_staff", str(uuid.uuid4()), community)
    voters = {str(uuid.uuid4()): None for _ in range(VOTERS)}
    for user_id in voters:
        voters[user_id] = bearer(token_signer, "resident", user_id, community)
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    created = api.call(
        "POST",
        "/",
        staff,
        json={
            "community_id": community,
            "meeting_type": "bench",
            "title": "Courtyard bench meeting",
            "place": "Courtyard",
            "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(hours=2)).isoformat(),
            "participants": [{"role": "resident", "user_id": u} for u in voters],
        },
    )
    assert created.status_code == 201, created.text
    meeting_id = created.json()["id"]
    assert api.call("POST", f"/{meeting_id}/start", staff).status_code == 200
    for person in api.call("GET", f"/{meeting_id}/participants", staff).json():
        checked = api.call("POST", f"/{meeting_id}/participants/{person['id']}/check-in", staff)
        assert checked.status_code == 200, checked.text

    for round_number in range(MOTIONS):
        motion = api.call("POST", f"/{meeting_id}/motions", staff, json={"motion": f"Motion {round_number}"})
        assert motion.status_code == 201, motion.text
        url = f"/{meeting_id}/motions/{motion.json()['id']}"
        answers, decision = votes_while_recording(web.url, url, voters, staff)
        assert decision.status_code == 200, decision.text
        decision = decision.json()
        assert Counter(r.status_code for r in answers.values()) <= Counter({201: VOTERS, 409: VOTERS})
        accepted = {u for u, r in answers.items() if r.status_code == 201}
        for refused in (r for r in answers.values() if r.status_code == 409):
            # Asked without a language, the refusal is in Chinese, the platform's default.
            assert refused.json()["error"]["message"] == "动议已记录，表决已结束"
        # Every vote answered 201 is in the decision, with its choice; nothing else is.
        expected = Counter(CHOICES[n % 3] for n, u in enumerate(voters) if u in accepted)
        counted = (decision["votes_for"], decision["votes_against"], decision["abstentions"])
        assert counted == (expected["for"], expected["against"], expected["abstain"]), (round_number, accepted)
        assert {v["voter_id"] for v in decision["votes"]} == accepted
        again = api.call("GET", url, staff).json()
        assert (again["votes_for"], again["votes_against"], again["abstentions"]) == counted
        assert {v["voter_id"] for v in again["votes"]} == accepted
