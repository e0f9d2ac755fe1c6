"""The community a person signs up in: the public directory, grouped by street."""

from __future__ import annotations

from typing import Any

from linli_web.gateway_client import GatewayClient


def group_communities(streets: list[dict[str, Any]], communities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """[{"street": name, "communities": [{"id", "name"}...]}...], streets and communities by name."""
    names = {s["id"]: s["name"] for s in streets}
    grouped: dict[str, list[dict[str, Any]]] = {}
    for community in communities:
        grouped.setdefault(community.get("street_id") or "", []).append(
            {"id": community["id"], "name": community["name"]}
        )
    out = [
        {"street": names.get(street_id, ""), "communities": sorted(items, key=lambda c: c["name"])}
        for street_id, items in grouped.items()
    ]
    return sorted(out, key=lambda g: g["street"])


def community_choices(gateway: GatewayClient) -> list[dict[str, Any]]:
    streets = _all(gateway, "/api/v1/directory/streets")
    communities = _all(gateway, "/api/v1/directory/communities")
    return group_communities(streets, communities)


def _all(gateway: GatewayClient, path: str, limit_pages: int = 20) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for page in range(1, limit_pages + 1):
        answer = gateway.request("GET", path, params={"page": page, "page_size": 100})
        items.extend(answer.data or [])
        if len(answer.data or []) < 100:
            break
    return items
