"""Use cases of service posts and the 15-minute circle."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, select

from linli_activities.adapters.tables import replica
from linli_activities.domain.places import (
    CIRCLE_MINUTES,
    CompoundCoverage,
    PostDistance,
    ServicePost,
    WalkingModel,
    coverage,
    posts_within,
)
from linli_activities.service_layer import scope
from linli_activities.service_layer.unit_of_work import ActivitiesUnitOfWork
from linli_kit.auth import Principal
from linli_kit.errors import Invalid, NotFound


def create_post(uow: ActivitiesUnitOfWork, principal: Principal, **values: Any) -> ServicePost:
    with uow:
        scope.require_staff_of(uow, principal, values["community_id"])
        post = ServicePost(created_at=uow.clock(), **values)
        uow.repo.add(post)
        uow.commit()
        return post


def get_post(uow: ActivitiesUnitOfWork, post_id: str) -> ServicePost:
    with uow:
        return _post(uow, post_id)


def _post(uow: ActivitiesUnitOfWork, post_id: str) -> ServicePost:
    post = uow.repo.get(ServicePost, post_id)
    if post is None:
        raise NotFound("service post {post_id} not found", post_id=post_id)
    return post


def update_post(uow: ActivitiesUnitOfWork, principal: Principal, post_id: str, **changes: Any) -> ServicePost:
    with uow:
        post = _post(uow, post_id)
        scope.require_staff_of(uow, principal, post.community_id)
        post.change(**changes)
        uow.commit()
        return post


def list_posts(
    uow: ActivitiesUnitOfWork, *, community_id: str | None, street_id: str | None, offset: int, limit: int
) -> tuple[list[ServicePost], int]:
    """Posts are public places: anyone signed in may find them, in any community."""
    with uow:
        where: list[ColumnElement[bool]] = [ServicePost.active.is_(True)]
        if community_id is not None:
            where.append(ServicePost.community_id == community_id)
        if street_id is not None:
            c = replica.communities.c
            where.append(ServicePost.community_id.in_(select(c.community_id).where(c.street_id == street_id)))
        return uow.repo.page(ServicePost, where, [ServicePost.name, ServicePost.id], offset=offset, limit=limit)


def _candidates(
    uow: ActivitiesUnitOfWork, model: WalkingModel, lat: float, lon: float, minutes: float
) -> list[ServicePost]:
    return uow.repo.posts_in_box(*model.bounding_box(lat, lon, minutes))


def posts_near(
    uow: ActivitiesUnitOfWork,
    model: WalkingModel,
    *,
    latitude: float | None = None,
    longitude: float | None = None,
    compound_id: str | None = None,
    minutes: float = CIRCLE_MINUTES,
) -> list[PostDistance]:
    """Posts within `minutes` on foot of a point or of a compound (its coordinates from the replica)."""
    with uow:
        if compound_id is not None:
            found = uow.repo.compound(compound_id)
            if found is None:
                raise NotFound("compound {compound_id} not found", compound_id=compound_id)
            point, _community = found
            if point.latitude is None or point.longitude is None:
                raise Invalid("this compound has no coordinates yet", fields={"compound_id": ["no coordinates"]})
            latitude, longitude = point.latitude, point.longitude
        if latitude is None or longitude is None:
            raise Invalid(
                "give a location or a compound", fields={"latitude": ["latitude and longitude, or compound_id"]}
            )
        return posts_within(model, latitude, longitude, _candidates(uow, model, latitude, longitude, minutes), minutes)


@dataclass(frozen=True)
class CommunityCoverage:
    community_id: str
    minutes: float
    compounds: list[CompoundCoverage]

    @property
    def gaps(self) -> list[CompoundCoverage]:
        return [c for c in self.compounds if c.located and c.nearest is None]

    @property
    def unlocated(self) -> list[CompoundCoverage]:
        return [c for c in self.compounds if not c.located]


def community_coverage(
    uow: ActivitiesUnitOfWork,
    principal: Principal,
    model: WalkingModel,
    community_id: str,
    minutes: float = CIRCLE_MINUTES,
) -> CommunityCoverage:
    """Every compound of the community with its nearest post within `minutes`; the rest are the gaps.
    A post of a neighbouring community counts: people walk across community lines."""
    with uow:
        scope.require_visible(uow, principal, community_id)
        if not uow.repo.community_exists(community_id):
            raise NotFound("community {community_id} not found", community_id=community_id)
        compounds = uow.repo.compounds_of(community_id)
        located = [c for c in compounds if c.latitude is not None and c.longitude is not None]
        posts: dict[str, ServicePost] = {}
        if located:
            # One box around all the compounds, widened at each corner by the walk (the width of a
            # degree of longitude depends on the latitude, so every corner is asked).
            corners = [
                model.bounding_box(lat, lon, minutes)
                for lat in (min(c.latitude for c in located), max(c.latitude for c in located))  # type: ignore[type-var]
                for lon in (min(c.longitude for c in located), max(c.longitude for c in located))  # type: ignore[type-var]
            ]
            box = (
                min(b[0] for b in corners),
                max(b[1] for b in corners),
                min(b[2] for b in corners),
                max(b[3] for b in corners),
            )
            for post in uow.repo.posts_in_box(*box):
                posts[post.id] = post
        return CommunityCoverage(community_id, minutes, coverage(model, compounds, list(posts.values()), minutes))
