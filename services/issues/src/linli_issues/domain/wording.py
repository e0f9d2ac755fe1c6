"""What the service itself writes on an issue's timeline (the reason of a move it makes on its own),
worded in the reader's language. No framework here.

A machine reason is made as a `Text` (an English message id and its values). Its entry keeps the
English as its body (what events carry and what readers of before saw) and the message in its data
(`data["message"] = {"id": ..., "params": {...}}`): the answer words the body from it in the
language of the request. A reason typed by a person is kept as typed, with no message.
"""

from __future__ import annotations

import re
from typing import Any

from linli_kit.errors import N_, Text

ON_THE_AGENDA = N_("on the agenda of {title}")
DECIDED_AT_A_MEETING = N_("decided at a meeting")
TO_BE_CONSULTED_AGAIN = N_("to be consulted again")
ACTION_ITEMS_DONE = N_("the action items of the decision are done")
ACTION_ITEM_UNDONE = N_("an action item of the decision is no longer done")
DEADLINE_PASSED = N_("deadline passed at {at}")
CLOSED_UNRATED = N_("closed automatically: no rating")

# Entries stored before their message was kept: the kinds the service writes a reason in on its
# own (with no author), and the texts it wrote, recognised when they are read.
_MACHINE_KINDS = frozenset({"status", "follow_up", "escalation"})
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def _pattern(template: str) -> re.Pattern[str]:
    parts = _PLACEHOLDER.split(template)
    return re.compile(
        "^" + "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>.+)" for i, p in enumerate(parts)) + "$", re.DOTALL
    )


_KNOWN = tuple(
    (template, _pattern(template))
    for template in (
        ON_THE_AGENDA,
        DECIDED_AT_A_MEETING,
        TO_BE_CONSULTED_AGAIN,
        ACTION_ITEMS_DONE,
        ACTION_ITEM_UNDONE,
        DEADLINE_PASSED,
        CLOSED_UNRATED,
    )
)


def with_message(body: str | None, data: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """The body and data an entry is stored with: a machine reason (a `Text`) as its English and
    its message; anything else as it is."""
    if isinstance(body, Text):
        return str(body), data | {"message": {"id": body.template, "params": dict(body.params)}}
    return body, data


def message_of(kind: str, body: str | None, author_id: str | None, data: dict[str, Any]) -> Text | None:
    """The message an entry's body is worded from: the one it keeps, or for an entry of before
    written by the service, the known text its body is (None: the body is shown as it is)."""
    kept = data.get("message")
    if isinstance(kept, dict):
        params = kept.get("params") or {}
        if isinstance(kept.get("id"), str) and isinstance(params, dict):
            try:
                return Text(kept["id"], **params)
            except (KeyError, IndexError, ValueError):
                return None
        return None
    if body is None or author_id is not None or kind not in _MACHINE_KINDS:
        return None
    for template, pattern in _KNOWN:
        found = pattern.match(body)
        if found is not None:
            return Text(template, **found.groupdict())
    return None
