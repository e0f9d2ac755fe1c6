"""Real processes: the gateway's directory reaches the issues worker, a resident reports through the
issues web process under gunicorn, and a meeting event moves the issue, with the issues events on the bus."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pika
import pytest
import requests

from linli_kit.events import new_event
from linli_kit.events.topology import declare_exchanges
from linli_kit.testing import probe
from linli_kit.testing.waiting import eventually

pytestmark = pytest.mark.integration


class Listener:
    """A queue bound to every issues.* key: what the issues service really published."""

    def __init__(self, amqp_url: str, bus) -> None:
        self.conn = pika.BlockingConnection(pika.URLParameters(amqp_url))
        self.channel = self.conn.channel()
        declare_exchanges(self.channel, bus)
        self.queue = self.channel.queue_declare("", exclusive=True).method.queue
        self.channel.queue_bind(self.queue, bus.exchange, routing_key="issues.#")
        self.seen: list[dict] = []

    def events(self) -> list[dict]:
        while True:
            method, _props, body = self.channel.basic_get(self.queue, auto_ack=True)
            if method is None:
                return self.seen
            self.seen.append(json.loads(body))

    def close(self) -> None:
        self.conn.close()


def test_report_and_consultation_through_real_processes(platform, token_signer, amqp_url, bus_names):
    listener = Listener(amqp_url, bus_names)
    gateway = platform.start_web("gateway")
    platform.start_worker("gateway")
    platform.start_worker("issues")
    issues = platform.start_web("issues")
    admin = {"Authorization": "Bearer " + token_signer.sign(user_id=str(uuid.uuid4()), role="city_admin")}
    directory = gateway.url + "/api/v1/directory"
    street = requests.post(f"{directory}/streets", json={"name": "Yucai Street", "city": "Lingwu"}, headers=admin)
    community = requests.post(
        f"{directory}/communities", json={"street_id": street.json()["id"], "name": "Yucai"}, headers=admin
    ).json()["id"]
    resident_id = str(uuid.uuid4())
    resident = {
        "Authorization": "Bearer " + token_signer.sign(user_id=resident_id, role="resident", community_ids=[community])
    }
    body = {
        "community_id": community,
        "title": "Roof of Building 7 leaks",
        "description": "Aging roof, rain comes in",
        "category": "repairs_facilities",
    }

    def report() -> requests.Response | None:
        response = requests.post(issues.url + "/", json=body, headers=resident)
        # Until the directory reaches the issues replica the community is unknown (422).
        return response if response.status_code == 201 else None

    created = eventually(report, what="community in the issues replica, then the report").json()
    assert created["status"] == "reported" and created["reporter_id"] == resident_id

    scheduled = new_event(
        "meetings.meeting.scheduled",
        {
            "meeting_id": str(uuid.uuid4()),
            "community_id": community,
            "meeting_type": "round_table",
            "title": "Neighbourhood round table",
            "starts_at": datetime.now(UTC) + timedelta(days=3),
            "ends_at": datetime.now(UTC) + timedelta(days=3, hours=2),
            "convener_id": str(uuid.uuid4()),
            "issue_ids": [created["id"]],
            "revision": 1,
        },
        producer="meetings",
        community_id=community,
    )
    probe.publish_raw(amqp_url, bus_names, scheduled.to_json().encode(), routing_key=scheduled.type)

    def issue() -> dict:
        return requests.get(f"{issues.url}/{created['id']}", headers=resident).json()

    eventually(lambda: issue()["status"] == "deliberating", what="meeting moves the issue")
    assert issue()["consultation_count"] == 1

    def published() -> list[str]:
        return [e["type"] for e in listener.events() if e["data"]["issue_id"] == created["id"]]

    eventually(lambda: len(published()) >= 2, what="issues events on the broker")
    # Reported, then moved into deliberation by the meeting (with its consultation count): one
    # status event for the one change of status, naming the status it left.
    assert published() == ["issues.issue.reported", "issues.issue.status_changed"]
    moved = listener.seen[1]["data"]
    assert (moved["from_status"], moved["status"], moved["consultation_count"]) == ("reported", "deliberating", 1)
    reported = listener.seen[0]
    assert reported["producer"] == "issues" and reported["community_id"] == community
    assert reported["street_id"] == street.json()["id"]
    listener.close()
