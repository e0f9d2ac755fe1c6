"""The embedded default: migrations, planning and delivery on a SQLite file with the log provider."""

import uuid

from sqlalchemy import select

from linli_kit.db import Database
from linli_kit.migrations import upgrade
from linli_notifications.adapters.tables import deliveries, recipients
from linli_notifications.config import build_providers, load_config
from linli_notifications.definition import definition
from linli_notifications.domain.model import Category, Intent
from linli_notifications.service_layer.delivery import Deliverer
from linli_notifications.service_layer.planning import plan


def test_sqlite_plans_once_and_delivers_through_the_log_provider(tmp_path, clock):
    url = f"sqlite:///{tmp_path / 'notifications.db'}"
    upgrade(definition.migrations_dir, url)
    db = Database(url)
    user_id = str(uuid.uuid4())
    with db.transaction() as s:
        s.execute(
            recipients.insert().values(
                user_id=user_id,
                role="resident",
                display_name="x",
                phone="+8613800138000",
                locale="en",
                active=True,
                revision=1,
                updated_at=clock(),
            )
        )
    intent = Intent(
        source_key="e1",
        source_type="t",
        kind="issue.progress",
        category=Category.SAFETY,
        user_ids=(user_id,),
        params={"title": "Roof of Building 7", "status": "resolved"},
        urgent=True,
    )
    for _ in range(2):
        with db.transaction() as s:
            plan(s, intent, clock(), "Asia/Shanghai")
    config = load_config({})
    Deliverer(db, config, build_providers(config), clock=clock, city_timezone="Asia/Shanghai").drain()
    with db.session() as s:
        rows = s.execute(select(deliveries.c.channel, deliveries.c.state, deliveries.c.provider)).all()
    assert sorted(tuple(r) for r in rows) == [("push", "suppressed", None), ("sms", "sent", "log:sms")]
    db.dispose()
