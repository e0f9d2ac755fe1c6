"""The issues service's unit of work: the repository plus the outbox, committed together."""

from __future__ import annotations

from linli_issues.adapters.repository import IssueRepository
from linli_issues.adapters.tables import messaging
from linli_kit.db import Database
from linli_kit.events.outbox import Outbox
from linli_kit.uow import UnitOfWork


class IssuesUnitOfWork(UnitOfWork):
    issues: IssueRepository

    def __init__(self, database: Database) -> None:
        super().__init__(database, Outbox(messaging.outbox))

    def __enter__(self) -> IssuesUnitOfWork:
        super().__enter__()
        self.issues = IssueRepository(self.session)
        return self
