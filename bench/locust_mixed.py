"""The users of `mixed_load.py`, for Locust: residents reading their community and reporting, staff
triaging, a street official on the overview. Run by `mixed_load.py` from its own virtual environment
(Locust's gevent must not share a process with anything else); reads the plan it wrote (tokens of the
demo city's people and the ids they use) from LINLI_LOAD_PLAN.

Requests are named by route, not by URL, so each route gets one line of figures. Any answer the
route should not give fails the request (a 409 "already supported" is an answer a resident may get;
a 5xx never is).
"""

from __future__ import annotations

import itertools
import json
import os
import random

from locust import HttpUser, between, task

PLAN = json.loads(open(os.environ["LINLI_LOAD_PLAN"]).read())  # noqa: SIM115 - read once at import
API = "/api/v1"
_turns = {role: itertools.cycle(PLAN["people"][role]) for role in PLAN["people"]}


class _Person(HttpUser):
    abstract = True
    role = ""
    # A person reads a page, then acts: not a client hammering the API.
    wait_time = between(0.5, 2.0)

    def on_start(self) -> None:
        me = next(_turns[self.role])
        self.client.headers["Authorization"] = f"Bearer {me['token']}"
        self.community_id = me.get("community_id")
        # Issues this person may read (listed with their own token when the plan was made).
        self.issue_ids: list[str] = list(me["issue_ids"])

    def _get(self, path: str, name: str, **params: object) -> dict | list | None:
        with self.client.get(API + path, params=params or None, name=name, catch_response=True) as answer:
            if answer.status_code != 200:
                answer.failure(f"{answer.status_code}: {answer.text[:200]}")
                return None
            return answer.json()

    def _post(self, path: str, name: str, body: dict, accept: tuple[int, ...] = (200, 201)) -> dict | None:
        with self.client.post(API + path, json=body, name=name, catch_response=True) as answer:
            if answer.status_code not in accept:
                answer.failure(f"{answer.status_code}: {answer.text[:200]}")
                return None
            answer.success()
            return answer.json() if answer.content else None

    def _an_issue(self) -> str:
        return random.choice(self.issue_ids)


class Resident(_Person):
    weight = 6
    role = "resident"

    @task(5)
    def community_issues(self) -> None:
        self._get("/issues/", "GET /issues/ (community)", community_id=self.community_id)

    @task(3)
    def one_issue(self) -> None:
        self._get(f"/issues/{self._an_issue()}", "GET /issues/{id}")

    @task(2)
    def meetings(self) -> None:
        self._get("/meetings/", "GET /meetings/")

    @task(2)
    def activities(self) -> None:
        self._get("/activities/", "GET /activities/")

    @task(2)
    def inbox(self) -> None:
        self._get("/notifications/", "GET /notifications/ (inbox)")

    @task(1)
    def report(self) -> None:
        made = self._post(
            "/issues/",
            "POST /issues/ (report)",
            {
                "community_id": self.community_id,
                "title": "Stairwell light out",
                "category": "repairs_facilities",
                "urgency": "normal",
                "description": "The light on the third floor has been out for a week.",
            },
            accept=(201,),
        )
        if made:
            self.issue_ids.append(made["id"])

    @task(1)
    def me_too(self) -> None:
        # Supporting one's own issue or one already supported is refused (409): an answer, not an error.
        self._post(f"/issues/{self._an_issue()}/supporters", "POST /issues/{id}/supporters", {}, (201, 200, 409))


class Staff(_Person):
    weight = 3
    role = "community_staff"

    @task(4)
    def triage_queue(self) -> None:
        self._get("/issues/", "GET /issues/ (queue)", community_id=self.community_id, status="reported")

    @task(2)
    def one_issue(self) -> None:
        self._get(f"/issues/{self._an_issue()}", "GET /issues/{id}")

    @task(1)
    def timeline(self) -> None:
        self._get(f"/issues/{self._an_issue()}/updates", "GET /issues/{id}/updates")

    @task(1)
    def internal_note(self) -> None:
        body = {"kind": "note", "body": "Called the property company; they come on Monday."}
        self._post(f"/issues/{self._an_issue()}/updates", "POST /issues/{id}/updates (note)", body, (201,))


class Official(_Person):
    weight = 1
    role = "street_official"

    @task(1)
    def overview(self) -> None:
        self._get("/stats/overview", "GET /stats/overview")

    @task(2)
    def street_issues(self) -> None:
        self._get("/issues/", "GET /issues/ (street)", status="reported")
