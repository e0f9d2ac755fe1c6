"""The meetings unit of work: repository plus outbox, committed together; with the city's clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from zoneinfo import ZoneInfo

from linli_kit.db import Database
from linli_kit.events.outbox import Outbox
from linli_kit.uow import UnitOfWork
from linli_meetings.adapters.repository import MeetingRepository
from linli_meetings.adapters.tables import messaging
from linli_meetings.domain.meeting import utcnow


class MeetingsUnitOfWork(UnitOfWork):
    meetings: MeetingRepository

    def __init__(
        self, database: Database, *, timezone: str = "Asia/Shanghai", clock: Callable[[], datetime] = utcnow
    ) -> None:
        super().__init__(database, Outbox(messaging.outbox))
        self.tz = ZoneInfo(timezone)
        self.clock = clock

    def __enter__(self) -> MeetingsUnitOfWork:
        super().__enter__()
        self.meetings = MeetingRepository(self.session)
        return self

    def now(self) -> datetime:
        return self.clock()

    def today(self) -> date:
        """Today in the city: what 'overdue' is measured against."""
        return self.clock().astimezone(self.tz).date()
