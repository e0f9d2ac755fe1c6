"""What a person follows, and the communities of theirs they could follow (a community's followers
are told of its public meetings and activities: `meeting.scheduled` goes to them)."""

from __future__ import annotations

from typing import Any

FOLLOWS_PAGE = 100  # the API's largest page: a person's follows fit in it


def followed_communities(follows: list[dict[str, Any]]) -> set[str]:
    return {f["target_id"] for f in follows if f.get("target_type") == "community"}


def community_offers(
    community_ids: list[str], follows: list[dict[str, Any]], names: dict[str, str | None]
) -> list[dict[str, Any]]:
    """The person's own communities they do not follow yet, in the order of their account, each with
    its name where the directory gave one (following is their choice: offered, never done for them)."""
    followed = followed_communities(follows)
    return [{"id": c, "name": names.get(c)} for c in community_ids if c not in followed]
