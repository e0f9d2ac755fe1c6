"""The shortcuts a batch of events takes in Python say what the plain ways say: who may read a
notice's subjects, JSON text, a template's names, a plan's arrays with no delivery."""

import itertools
import json
import random
from datetime import UTC, datetime

import pytest

from linli_kit.errors import Invalid
from linli_notifications.adapters import repository
from linli_notifications.domain.access import COMMUNITY, PRIVATE, PUBLIC, Reader, Subject, readable, who_may_read
from linli_notifications.domain.model import Category, Intent, Recipient
from linli_notifications.domain.templates import TEMPLATES, placeholders, render, render_notice
from linli_notifications.service_layer.planning import group_values

HOME, OTHER = "c-home", "c-other"
NOW = datetime(2026, 11, 27, 4, 0, tzinfo=UTC)


def test_who_may_read_is_readable_person_by_person() -> None:
    rng = random.Random(3)
    readers = {
        f"u{i}": Reader(
            user_id=f"u{i}",
            role=rng.choice(["resident", "community_staff", "street_official", "city_admin", "agency"]),
            community_ids=frozenset(rng.sample([HOME, OTHER], rng.randint(0, 2))),
            street_id=rng.choice([None, "s1"]),
            organisation_id=rng.choice([None, "org"]),
            active=rng.random() < 0.9,
        )
        for i in range(30)
    }
    people = [*readers, "stranger"]

    def subject() -> Subject | None:
        if rng.random() < 0.1:
            return None  # not known here
        return Subject(
            subject_type=rng.choice(["issue", "meeting"]),
            subject_id="x",
            community_id=rng.choice([HOME, OTHER]),
            street_id=rng.choice([None, "s1"]),
            visibility=rng.choice([PUBLIC, COMMUNITY, PRIVATE]),
            reporter_id=rng.choice(people),
            member_ids=frozenset(rng.sample(people, 3)),
            assignee_id=rng.choice([None, "org"]),
        )

    for _ in range(500):
        subjects = [subject() for _ in range(rng.choice([1, 1, 2, 3]))]
        user_ids = tuple(rng.sample(people, rng.randint(0, 8)))
        expected = tuple(u for u in user_ids if u in readers and readable(subjects, readers[u]))
        assert who_may_read(subjects, user_ids, readers) == expected


@pytest.mark.parametrize(
    "value",
    [None, "", 'a"\\社\n', 1, 1.5, -0.0, 10**20, True, [1, None, {"a": [1.0, "b"]}], {"1": 2, "k": "社区"}, (1, 2)],
)
def test_json_text_is_json_dumps(value) -> None:
    assert repository.to_json(value) == json.dumps(value, ensure_ascii=False)


def test_json_text_still_right_after_a_value_it_cannot_encode() -> None:
    params = {"title": "书法班"}
    with pytest.raises(TypeError):
        repository.to_json({"when": NOW, "nested": params})
    # The failed call left nothing behind: the same object is encoded as before.
    assert repository.to_json({"nested": params}) == json.dumps({"nested": params}, ensure_ascii=False)


def test_a_templates_names_are_those_of_its_texts() -> None:
    for template, locale in itertools.product(TEMPLATES.values(), ("zh-CN", "en")):
        names = (placeholders(template.title[locale]) | placeholders(template.body[locale])) | placeholders(
            template.sms_text(locale)
        )
        # Every name given: renders; one name missing: refused naming exactly that name.
        params = {name: "1" for name in names}
        if "when_at" in names or "when" in names:
            params["when_at"] = NOW.isoformat()
        render(template.kind, locale, params)
        for missing in sorted(names - {"when"}):
            with pytest.raises(Invalid) as refused:
                render(template.kind, locale, {k: v for k, v in params.items() if k != missing})
            assert missing in refused.value.fields


def test_a_notice_is_rendered_as_render_renders_it_and_refused_alike() -> None:
    rng = random.Random(5)
    for template, locale in itertools.product(TEMPLATES.values(), ("zh-CN", "en", "fr")):
        names = sorted(placeholders(template.title["en"]) | placeholders(template.body["en"]) | {"status", "when_at"})
        for _ in range(20):
            params = {name: rng.choice(["reported", "declined", "bench", 3, "长" * 40, "", None]) for name in names}
            params["when_at"] = rng.choice([None, NOW.isoformat()])
            try:
                rendered = render(template.kind, locale, params, "Europe/London")
            except Invalid as exc:
                with pytest.raises(Invalid) as refused:
                    render_notice(template.kind, locale, params, "Europe/London")
                assert refused.value.fields == exc.fields
            else:
                assert render_notice(template.kind, locale, params, "Europe/London") == (rendered.title, rendered.body)


def test_a_plan_whose_groups_get_no_delivery_has_empty_delivery_arrays() -> None:
    recipient = Recipient(user_id="u1", role="resident", phone="+8613800000000")
    intent = Intent(
        source_key="event:1",
        source_type="issues.issue.reported",
        kind="issue.reported",
        category=Category.NEW_ISSUE,
        user_ids=("u1",),
        params={"community": "社区", "title": "灯坏了", "urgency": "normal"},
        channels=frozenset(),  # told in the inbox only
    )
    values = group_values([intent], {"u1": recipient}, {}, NOW)
    assert values is not None
    assert values["user_ids"] == '{"u1"}' and values["groups"] == "{1}"
    assert [values[name] for name in ("decided", "channels", "states", "reasons", "not_before", "finished")] == [
        "{}"
    ] * 6
    assert values["expires"] == "{NULL}"
