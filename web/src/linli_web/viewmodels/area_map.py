"""The map of an area (a street, the city, a community) for street officials and city admins: its
compounds with their overdue issues, the service posts, and the coverage gaps (compounds with no
service post within a 15-minute walk, as the activities service's `/coverage/<community>` counts
the walk). The same facts are given as tables, which are the page without JavaScript; the map's
markers are drawn from them."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from flask_babel import gettext as _
from flask_babel import ngettext
from linli_web.i18n import bracketed

WALK_MINUTES = 15
# The issues API gives at most this many in one page; more overdue issues are counted, not placed.
OVERDUE_PAGE = 100


@dataclass
class CompoundPlace:
    id: str
    name: str
    community_id: str
    latitude: float | None
    longitude: float | None
    covered: bool | None  # None: the coverage is not known (the service did not answer)
    nearest_post: str | None
    walking_minutes: float | None
    overdue: int = 0

    @property
    def state(self) -> str:
        """What the marker says first: overdue issues outweigh a gap, a gap outweighs nothing."""
        if self.overdue:
            return "overdue"
        if self.covered is False:
            return "gap"
        return "covered" if self.covered else "unknown"


@dataclass
class CommunityRow:
    id: str
    name: str
    compounds: list[CompoundPlace] = field(default_factory=list)
    unlocated: int = 0  # compounds without coordinates: neither placed nor counted as gaps
    overdue: int = 0
    posts: list[str] = field(default_factory=list)
    coverage_known: bool = True

    @property
    def gaps(self) -> list[CompoundPlace]:
        return [c for c in self.compounds if c.covered is False]


@dataclass
class AreaMap:
    communities: list[CommunityRow]
    posts: list[dict[str, Any]]
    overdue_total: int | None  # None: the issues service did not answer
    overdue_placed: int
    missing: list[str]
    markers: list[dict[str, Any]]

    @property
    def gap_total(self) -> int:
        return sum(len(c.gaps) for c in self.communities)

    @property
    def without_post(self) -> list[CommunityRow]:
        """Communities where no located compound has a post within the walk."""
        return [c for c in self.communities if c.coverage_known and c.compounds and len(c.gaps) == len(c.compounds)]


def _marker_text(place: CompoundPlace, community: str) -> str:
    parts = [f"{place.name}{bracketed(community)}"]
    if place.overdue:
        parts.append(ngettext("%(num)d overdue issue", "%(num)d overdue issues", place.overdue))
    if place.covered is False:
        parts.append(_("no service post within a %(n)d-minute walk", n=WALK_MINUTES))
    elif place.covered and place.nearest_post:
        parts.append(_("%(post)s, %(n)d min walk", post=place.nearest_post, n=round(place.walking_minutes or 0)))
    return " · ".join(parts)


def build(
    communities: list[dict[str, Any]],
    coverage: dict[str, Any],
    posts: list[dict[str, Any]] | None,
    overdue: tuple[list[dict[str, Any]], int] | None,
) -> AreaMap:
    """`coverage` maps a community's id to the coverage API's answer, or None when it did not
    answer; `posts` and `overdue` (the overdue issues' first page and their total) are None when
    their service did not answer."""
    missing = []
    if posts is None:
        missing.append("activities")
    if overdue is None:
        missing.append("issues")
    elif any(v is None for v in coverage.values()) and "activities" not in missing:
        missing.append("activities")
    issues, overdue_total = overdue if overdue is not None else ([], None)
    by_compound = Counter(i.get("compound_id") for i in issues if i.get("compound_id"))
    by_community = Counter(i.get("community_id") for i in issues)
    posts_by_community: dict[str, list[str]] = {}
    for post in posts or []:
        posts_by_community.setdefault(post.get("community_id") or "", []).append(post.get("name") or "")

    rows: list[CommunityRow] = []
    markers: list[dict[str, Any]] = []
    for community in communities:
        cid = community["id"]
        row = CommunityRow(
            id=cid,
            name=community.get("name") or cid,
            overdue=by_community.get(cid, 0),
            posts=sorted(posts_by_community.get(cid, [])),
        )
        answer = coverage.get(cid)
        if answer is None:
            row.coverage_known = False
        else:
            row.unlocated = len(answer.get("without_coordinates") or [])
            for item in answer.get("detail") or []:
                if item.get("latitude") is None or item.get("longitude") is None:
                    continue
                place = CompoundPlace(
                    id=item["compound_id"],
                    name=item.get("name") or "",
                    community_id=cid,
                    latitude=item["latitude"],
                    longitude=item["longitude"],
                    covered=bool(item.get("covered")),
                    nearest_post=item.get("nearest_post_name"),
                    walking_minutes=item.get("walking_minutes"),
                    overdue=by_compound.get(item["compound_id"], 0),
                )
                row.compounds.append(place)
                markers.append(
                    {
                        "id": place.id,
                        "name": _marker_text(place, row.name),
                        "label": place.name,  # the short name always shown beside the marker
                        "lat": place.latitude,
                        "lon": place.longitude,
                        "kind": place.state,
                    }
                )
        rows.append(row)

    for post in posts or []:
        if post.get("latitude") is None or post.get("longitude") is None or post.get("active") is False:
            continue
        markers.append(
            {
                "id": post.get("id"),
                "name": _("Service post: %(name)s", name=post.get("name") or ""),
                "label": post.get("name") or "",
                "lat": post["latitude"],
                "lon": post["longitude"],
                "kind": "post",
            }
        )
    active_posts = [p for p in posts or [] if p.get("active", True)]
    return AreaMap(
        communities=rows,
        posts=sorted(active_posts, key=lambda p: (p.get("community_id") or "", p.get("name") or "")),
        overdue_total=overdue_total,
        overdue_placed=sum(by_compound.values()),
        missing=missing,
        markers=markers,
    )
