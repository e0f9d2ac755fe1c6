"""Directory changes that would clash with another entry's name are a 409, never a 500."""

from __future__ import annotations

import pytest

from linli_gateway.definition import definition
from linli_gateway.service_layer import directory
from linli_gateway.service_layer.unit_of_work import GatewayUnitOfWork
from linli_kit.auth import Principal, Role
from linli_kit.db import Database
from linli_kit.errors import Conflict
from linli_kit.migrations import upgrade

ADMIN = Principal(user_id="admin", role=Role.CITY_ADMIN)


@pytest.fixture
def uow(tmp_path):
    url = f"sqlite:///{tmp_path / 'gateway.db'}"
    upgrade(definition.migrations_dir, url)
    database = Database(url)
    yield lambda: GatewayUnitOfWork(database)
    database.engine.dispose()


def test_renaming_or_moving_onto_a_taken_name_is_a_conflict_and_changes_nothing(uow):
    east = directory.create_street(uow(), ADMIN, name="East", city="Hangzhou")
    west = directory.create_street(uow(), ADMIN, name="West", city="Hangzhou")
    xihu = directory.create_community(uow(), ADMIN, street_id=east.id, name="Xihu")
    directory.create_community(uow(), ADMIN, street_id=west.id, name="Xihu")
    lake = directory.create_community(uow(), ADMIN, street_id=east.id, name="Lake")
    block_a = directory.create_compound(uow(), ADMIN, community_id=xihu.id, name="A")
    directory.create_compound(uow(), ADMIN, community_id=xihu.id, name="B")

    clashes = [
        lambda: directory.update_street(uow(), ADMIN, west.id, name="East"),
        lambda: directory.update_community(uow(), ADMIN, lake.id, name="Xihu"),
        lambda: directory.update_community(uow(), ADMIN, xihu.id, street_id=west.id),
        lambda: directory.update_compound(uow(), ADMIN, block_a.id, name="B", latitude=30.0),
    ]
    for clash in clashes:
        with pytest.raises(Conflict) as caught:
            clash()
        assert "name" in caught.value.fields
    assert directory.get_entry(uow(), directory.Street, west.id).name == "West"
    assert directory.get_entry(uow(), directory.Community, xihu.id).street_id == east.id
    assert directory.get_entry(uow(), directory.Compound, block_a.id).latitude is None

    # Keeping one's own name, or moving where it is free, is fine.
    assert directory.update_street(uow(), ADMIN, west.id, name="West", city="Hangzhou").revision == 1
    assert directory.update_community(uow(), ADMIN, lake.id, street_id=west.id).street_id == west.id
    assert directory.update_compound(uow(), ADMIN, block_a.id, name="C").name == "C"
