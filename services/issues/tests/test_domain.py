"""The domain core without a database: lifecycle, tiers, deadlines, categories, photos, similarity."""

from __future__ import annotations

import struct
import uuid
import zlib
from datetime import UTC, datetime, timedelta

import pytest

from linli_issues.domain.model import STATUSES, TRANSITIONS, Category, Issue, default_categories, sortable_id
from linli_issues.domain.photos import check_size, photo_kind
from linli_issues.domain.similarity import distance_metres, similarity_score, terms, text_similarity
from linli_kit.errors import Conflict, Invalid

NOW = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)
REPAIRS = next(c for c in default_categories() if c.key == "repairs_facilities")


def issue(status: str = "reported", tier: str = "compound") -> Issue:
    made = Issue(
        community_id="c",
        title="Roof leaks",
        description="Rain comes in",
        category="repairs_facilities",
        urgency="high",
        tier=tier,
        reporter_id="r",
        created_at=NOW,
        due_at=REPAIRS.deadline("high", NOW),
    )
    made.status = status
    return made


LEGAL = [(a, b) for a in STATUSES for b in STATUSES if b in TRANSITIONS[a]]
ILLEGAL = [(a, b) for a in STATUSES for b in STATUSES if b not in TRANSITIONS[a]]


@pytest.mark.parametrize(("start", "target"), LEGAL)
def test_every_legal_transition_moves_and_bumps_the_revision(start, target):
    subject = issue(start)
    assert subject.move_to(target, NOW) == start
    assert subject.status == target and subject.revision == 2 and subject.updated_at == NOW


@pytest.mark.parametrize(("start", "target"), ILLEGAL)
def test_every_illegal_transition_is_a_conflict_and_changes_nothing(start, target):
    subject = issue(start)
    with pytest.raises(Conflict):
        subject.move_to(target, NOW)
    assert subject.status == start and subject.revision == 1


def test_the_lifecycle_has_the_documented_shape():
    assert TRANSITIONS["reported"] == {"accepted", "rejected", "duplicate", "deliberating"}
    assert TRANSITIONS["resolved"] == {"closed", "accepted"}
    assert TRANSITIONS["rejected"] == TRANSITIONS["duplicate"] == frozenset()
    assert len(LEGAL) == 14


def test_timestamps_follow_the_lifecycle_and_reopening_clears_the_resolution():
    subject = issue()
    subject.move_to("accepted", NOW)
    assert subject.accepted_at == NOW
    subject.move_to("resolved", NOW + timedelta(hours=5))
    assert subject.resolved_at == NOW + timedelta(hours=5)
    subject.rate(2, "still drips", NOW + timedelta(hours=6))
    assert subject.status == "closed" and subject.closed_at == NOW + timedelta(hours=6) and subject.rating == 2
    subject.move_to("accepted", NOW + timedelta(hours=7))
    assert subject.resolved_at is None and subject.closed_at is None and subject.rating is None
    assert subject.accepted_at == NOW  # first acceptance is kept


def test_rating_needs_a_resolved_issue_and_a_value_from_one_to_five():
    with pytest.raises(Conflict):
        issue("accepted").rate(4, None, NOW)
    with pytest.raises(Invalid) as bad:
        issue("resolved").rate(6, None, NOW)
    assert "rating" in bad.value.fields


def test_escalation_climbs_one_tier_with_a_fresh_deadline_and_stops_at_the_city():
    subject = issue(tier="compound")
    later = NOW + timedelta(days=10)
    assert subject.escalate(REPAIRS, later, "no answer") == "compound"
    assert subject.tier == "community" and subject.due_at == later + timedelta(hours=120)
    subject.escalate(REPAIRS, later, None)
    subject.escalate(REPAIRS, later, None)
    assert subject.tier == "city" and subject.next_tier() is None
    with pytest.raises(Conflict, match="highest tier"):
        subject.escalate(REPAIRS, later, None)


def test_a_finished_issue_neither_escalates_nor_is_overdue():
    closed = issue("closed")
    with pytest.raises(Conflict):
        closed.escalate(REPAIRS, NOW, None)
    assert not closed.is_overdue(NOW + timedelta(days=400))
    assert issue("accepted").is_overdue(NOW + timedelta(hours=120))
    assert not issue("accepted").is_overdue(NOW + timedelta(hours=119))


def test_assignment_names_a_known_body_and_only_while_open():
    subject = issue("accepted")
    subject.assign("bureau", "b-1", NOW)
    assert (subject.assignee_type, subject.assignee_id) == ("bureau", "b-1")
    with pytest.raises(Invalid):
        subject.assign("cleaning_lady", None, NOW)
    with pytest.raises(Conflict):
        issue("closed").assign("bureau", None, NOW)


def test_categories_check_tier_body_and_a_deadline_for_every_urgency():
    assert [c.key for c in default_categories()] == [
        "safety_hazard",
        "repairs_facilities",
        "environment_sanitation",
        "property_management",
        "parking",
        "neighbour_dispute",
        "elderly_vulnerable_support",
        "other",
    ]
    with pytest.raises(Invalid) as bad:
        Category("x", "X", default_tier="province", responsible_body="mayor", deadline_hours={"low": 1})
    assert set(bad.value.fields) == {"default_tier", "responsible_body", "deadline_hours"}
    assert REPAIRS.deadline("urgent", NOW) == NOW + timedelta(hours=24)


def png(width: int = 1, height: int = 1) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + b"\x00\x00\x00" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 100 + b"\xff\xd9"


def test_photos_are_recognised_by_content():
    assert photo_kind(png()).content_type == "image/png"
    assert photo_kind(JPEG).content_type == "image/jpeg"
    assert photo_kind(b"\x00\x00\x00\x1cftypheic" + b"\x00" * 20).content_type == "image/heif"
    for content in (b"GIF89a" + b"\x00" * 50, b"<html>not an image</html>", b"\x00\x00\x00\x1cftypisom"):
        with pytest.raises(Invalid) as bad:
            photo_kind(content)
        assert bad.value.fields == {"photo": ["only JPEG, PNG and HEIC/HEIF images are accepted"]}
    with pytest.raises(Invalid, match="empty"):
        check_size(b"")
    with pytest.raises(Invalid, match="too large"):
        check_size(JPEG, max_bytes=50)


def test_similarity_reads_latin_words_and_chinese_character_pairs():
    assert terms("The roof of Building 7 leaks") == {"roof", "build", "leak"}
    assert terms("7号楼屋顶漏雨") >= {"屋顶", "漏雨"}
    assert text_similarity("roof leaks in building 7", "building 7 roof leaking badly") > 0.3
    assert text_similarity("roof leaks", "parking at the gate") == 0
    assert 990 < distance_metres(38.1, 106.34, 38.1, 106.3515) < 1025
    near = similarity_score(text="a", candidate_text="b", same_category=True, distance=10)
    far = similarity_score(text="a", candidate_text="b", same_category=True, distance=5000)
    assert near > 0.55 and far == pytest.approx(0.2)


def test_sortable_ids_are_canonical_uuid7s_in_the_order_they_were_made():
    ids = [sortable_id() for _ in range(2000)]
    for made in ids:
        parsed = uuid.UUID(made)
        assert str(parsed) == made  # the canonical text form, as str(uuid.UUID(...)) writes it
        assert parsed.version == 7 and parsed.variant == uuid.RFC_4122
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_a_machine_reason_keeps_its_message_and_one_typed_by_a_person_stays_as_typed():
    from linli_issues.domain import wording
    from linli_kit.errors import Text

    body, data = wording.with_message(Text(wording.ON_THE_AGENDA, title="北门议事会"), {"to": "deliberating"})
    assert type(body) is str and body == "on the agenda of 北门议事会"
    assert data == {
        "to": "deliberating",
        "message": {"id": "on the agenda of {title}", "params": {"title": "北门议事会"}},
    }
    kept = wording.message_of("status", body, None, data)
    assert kept is not None and kept.template == wording.ON_THE_AGENDA and kept.params == {"title": "北门议事会"}
    # Typed by staff: no message, even when it reads like one of the service's.
    assert wording.with_message("decided at a meeting", {}) == ("decided at a meeting", {})
    assert wording.message_of("status", "decided at a meeting", "staff-id", {}) is None
    assert wording.message_of("reply", "decided at a meeting", None, {}) is None
    assert wording.message_of("status", "the roof is repaired", None, {}) is None
    # Stored before the message was kept: the service's own texts are recognised.
    old = wording.message_of("status", "on the agenda of Round table no. 3", None, {"to": "deliberating"})
    assert old is not None and old.params == {"title": "Round table no. 3"}
    overdue = wording.message_of("escalation", "deadline passed at 2026-11-28T09:30:00+00:00", None, {})
    assert overdue is not None and overdue.params == {"at": "2026-11-28T09:30:00+00:00"}
    assert wording.message_of("status", "closed automatically: no rating", None, {}).template == wording.CLOSED_UNRATED
