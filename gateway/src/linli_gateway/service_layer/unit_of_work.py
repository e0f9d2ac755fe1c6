"""The gateway's unit of work: directory and accounts repositories plus the outbox, committed together."""

from __future__ import annotations

from linli_gateway.adapters.accounts_repository import AccountRepository
from linli_gateway.adapters.repository import DirectoryRepository
from linli_gateway.adapters.tables import messaging
from linli_kit.db import Database
from linli_kit.events.outbox import Outbox
from linli_kit.uow import UnitOfWork


class GatewayUnitOfWork(UnitOfWork):
    directory: DirectoryRepository
    accounts: AccountRepository

    def __init__(self, database: Database) -> None:
        super().__init__(database, Outbox(messaging.outbox))

    def __enter__(self) -> GatewayUnitOfWork:
        super().__enter__()
        self.directory = DirectoryRepository(self.session)
        self.accounts = AccountRepository(self.session)
        return self
