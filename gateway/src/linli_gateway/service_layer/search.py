"""One search across the services: each service that owns a kind of thing searches its own, with its
own scope rules, for a token standing for the caller; the gateway asks them at once and merges.

As in the overview, a service that does not answer is named under `missing` instead of failing
the whole search: people still find what the others hold, and are told what is left out.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

# Which service holds each kind of thing.
KIND_SERVICES: dict[str, str] = {
    "issue": "issues",
    "meeting": "meetings",
    "activity": "activities",
    "post": "activities",
    "group": "activities",
    "talent": "activities",
}
KINDS = tuple(KIND_SERVICES)

# (service, its query) -> the service's hits; raises when the service did not answer with them.
Fetch = Callable[[str, dict[str, str]], list[dict[str, Any]]]


def plan(kinds: list[str] | tuple[str, ...]) -> dict[str, list[str]]:
    """The services to ask, each with the kinds it holds among those asked for."""
    asked: dict[str, list[str]] = {}
    for kind in KINDS:
        if kind in kinds:
            asked.setdefault(KIND_SERVICES[kind], []).append(kind)
    return asked


def gather(
    q: str, kinds: list[str] | tuple[str, ...], limit: int, fetch: Fetch
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Ask every service holding one of `kinds` at once; (their hits, the services that failed)."""
    services = plan(kinds)
    hits: list[dict[str, Any]] = []
    missing: list[dict[str, str]] = []
    with ThreadPoolExecutor(max_workers=max(len(services), 1)) as pool:
        futures = {
            service: pool.submit(fetch, service, {"q": q, "kinds": ",".join(held), "limit": str(limit)})
            for service, held in services.items()
        }
        for service, future in futures.items():
            try:
                hits.extend(future.result())
            except Exception as exc:  # noqa: BLE001 - any failure marks the service missing
                missing.append({"service": service, "reason": str(exc) or type(exc).__name__})
    return hits, missing


def merge(hits: list[dict[str, Any]], limit: int, names: Callable[[str], str | None]) -> list[dict[str, Any]]:
    """The best `limit` hits of all services: by score (titles holding every word first), then the
    latest; each with its community's name."""
    ranked = sorted(hits, key=lambda h: (h.get("date") or "", h["kind"], h["id"]), reverse=True)
    ranked.sort(key=lambda h: h.get("score", 0), reverse=True)
    return [
        {**hit, "community_name": names(hit["community_id"]) if hit.get("community_id") else None}
        for hit in ranked[:limit]
    ]
