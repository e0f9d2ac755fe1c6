"""The activities unit of work: the repository plus the outbox, committed together, and the clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from linli_activities.adapters.repository import Repository
from linli_activities.adapters.tables import messaging
from linli_activities.domain.common import now_utc
from linli_kit.db import Database
from linli_kit.events.outbox import Outbox
from linli_kit.uow import UnitOfWork


class ActivitiesUnitOfWork(UnitOfWork):
    repo: Repository

    def __init__(self, database: Database, clock: Callable[[], datetime] = now_utc) -> None:
        super().__init__(database, Outbox(messaging.outbox))
        self.clock = clock

    def __enter__(self) -> ActivitiesUnitOfWork:
        super().__enter__()
        self.repo = Repository(self.session)
        return self
