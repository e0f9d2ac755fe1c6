"""End to end on real processes: the gateway's directory reaches this service's replica through
RabbitMQ, a street official plans an activity for one of the street's communities, residents sign
up through gunicorn, and the worker relays the events."""

from __future__ import annotations

import json
import uuid

import pika
import pytest
import requests

from linli_kit.events.topology import declare_exchanges
from linli_kit.testing.waiting import eventually

pytestmark = pytest.mark.integration


def test_directory_to_registration_on_real_processes(platform, token_signer, amqp_url, bus_names):
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    declare_exchanges(channel, bus_names)
    tap = channel.queue_declare("", exclusive=True).method.queue
    channel.queue_bind(tap, bus_names.exchange, routing_key="activities.#")

    gateway = platform.start_web("gateway")
    platform.start_worker("gateway")
    service = platform.start_web("activities")
    platform.start_worker("activities")
    directory = gateway.url + "/api/v1/directory"
    admin = {"Authorization": "Bearer " + token_signer.sign(user_id=str(uuid.uuid4()), role="city_admin")}
    street_id = requests.post(f"{directory}/streets", json={"name": f"Street {uuid.uuid4()}"}, headers=admin).json()[
        "id"
    ]
    community_id = requests.post(
        f"{directory}/communities", json={"street_id": street_id, "name": "Xihu"}, headers=admin
    ).json()["id"]
    compound_id = requests.post(
        f"{directory}/compounds",
        json={"community_id": community_id, "name": "Shangpinyuan", "latitude": 38.09, "longitude": 106.33},
        headers=admin,
    ).json()["id"]

    official = {
        "Authorization": "Bearer "
        + token_signer.sign(user_id=str(uuid.uuid4()), role="street_official", street_id=street_id)
    }
    body = {
        "community_ids": [community_id],
        "kind": "festival",
        "title": "Neighbourhood festival",
        "starts_at": "2099-06-01T09:00:00+08:00",
        "ends_at": "2099-06-01T12:00:00+08:00",
        "capacity": 2,
        "max_party_size": 2,
        "publish": True,
    }
    # The official's right over the community comes from the replica, filled from the gateway's events.
    created = eventually(
        lambda: (r := requests.post(service.url + "/", json=body, headers=official)).status_code == 201 and r,
        what="the community in the activities replica",
    )
    activity_id = created.json()["id"]
    coverage = eventually(
        lambda: (
            (r := requests.get(f"{service.url}/coverage/{community_id}", headers=official)).status_code == 200
            and r.json()["compounds"] == 1
            and r.json()
        ),
        what="the compound in the replica",
    )
    assert [g["compound_id"] for g in coverage["gaps"]] == [compound_id]  # no post yet: a gap

    def resident():
        return {
            "Authorization": "Bearer "
            + token_signer.sign(user_id=str(uuid.uuid4()), role="resident", community_ids=[community_id])
        }

    first = requests.post(f"{service.url}/{activity_id}/registrations", json={"party_size": 2}, headers=resident())
    second = requests.post(f"{service.url}/{activity_id}/registrations", json={"party_size": 1}, headers=resident())
    assert (first.status_code, first.json()["status"]) == (201, "confirmed")
    assert (second.json()["status"], second.json()["waitlist_position"]) == ("waitlisted", 1)

    seen: list[str] = []

    def events():
        while True:
            method, _props, raw = channel.basic_get(tap, auto_ack=True)
            if method is None:
                return seen
            event = json.loads(raw)
            if event["data"].get("activity_id") == activity_id:
                seen.append(event["type"])

    eventually(lambda: len(events()) >= 3, what="events relayed by the activities worker")
    assert sorted(seen) == [
        "activities.activity.published",
        "activities.registration.confirmed",
        "activities.registration.waitlisted",
    ]
    connection.close()
