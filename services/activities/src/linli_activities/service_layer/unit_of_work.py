"""The activities unit of work: the repository plus the outbox, committed together, and the clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from linli_activities.adapters.counts import ZONE_KEY
from linli_activities.adapters.repository import FirstSignUp, Repository, SignUpOutcome
from linli_activities.adapters.tables import messaging
from linli_activities.domain.common import now_utc
from linli_activities.domain.reminders import DEFAULT_LEAD_MINUTES
from linli_activities.service_layer.combiner import Combiner
from linli_kit.db import Database
from linli_kit.events.outbox import Outbox
from linli_kit.uow import UnitOfWork

# One per process: its threads' sign-ups for one activity gathered while a group is being written.
SIGN_UPS: Combiner[FirstSignUp, SignUpOutcome | None] = Combiner()
# Holds only its table and a statement built from it: one for every unit of work (each request
# makes a unit of work, and building the statement again was a tenth of its making).
OUTBOX = Outbox(messaging.outbox)


class ActivitiesUnitOfWork(UnitOfWork):
    repo: Repository

    def __init__(
        self,
        database: Database,
        clock: Callable[[], datetime] = now_utc,
        *,
        reminder_minutes: tuple[int, ...] = DEFAULT_LEAD_MINUTES,
        timezone: str = "Asia/Shanghai",
        sign_ups: Combiner[FirstSignUp, SignUpOutcome | None] | None = None,
    ) -> None:
        super().__init__(database, OUTBOX)
        self.clock = clock
        # How long before an activity's start its registrants are reminded (ACTIVITIES_REMINDER_MINUTES).
        self.reminder_minutes = reminder_minutes
        # The city's time zone (LINLI_TIMEZONE): the local dates and times of series and festivals.
        self.timezone = timezone
        # The process's first sign-ups gathered per activity and written together (PostgreSQL).
        self.sign_ups = SIGN_UPS if sign_ups is None else sign_ups

    def __enter__(self) -> ActivitiesUnitOfWork:
        super().__enter__()
        self.repo = Repository(self.session)
        # The statistics' counts are kept in the city's zone by every flush (adapters/counts.py).
        self.session.info[ZONE_KEY] = self.timezone
        return self
