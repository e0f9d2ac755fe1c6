"""The publication, reading and masking rules of the domain core (domain/privacy.py), on plain values."""

from __future__ import annotations

import pytest

from linli_issues.domain import privacy
from linli_issues.domain.model import Category, default_categories
from linli_kit.errors import Invalid


def test_categories_about_a_person_default_to_private_the_rest_to_community():
    publications = {c.key: c.publication for c in default_categories()}
    assert publications["elderly_vulnerable_support"] == "private"
    assert publications["neighbour_dispute"] == "private"
    assert {k for k, p in publications.items() if p == "public"} == set()  # public is chosen, never a default
    assert publications["repairs_facilities"] == "community"
    assert privacy.default_publication("elderly_vulnerable_support") == "private"
    assert privacy.default_publication("parking") == "community"


def test_a_category_refuses_an_unknown_publication():
    with pytest.raises(Invalid) as refused:
        Category("x", "X", publication="everyone")
    assert "publication" in refused.value.fields


@pytest.mark.parametrize(
    ("publication", "anonymous", "marked", "expected"),
    [
        ("public", False, False, "public"),
        ("public", True, False, "private"),
        ("public", False, True, "private"),
        ("community", False, False, "community"),
        ("community", True, False, "private"),
        ("private", False, False, "private"),
    ],
)
def test_visibility_is_the_category_s_made_private_by_anonymity_or_staff(publication, anonymous, marked, expected):
    assert privacy.visibility(publication, anonymous=anonymous, marked_private=marked) == expected


def test_narrower_and_wider():
    assert privacy.narrower("public", "community") == "community"
    assert privacy.narrower("private", "public") == "private"
    assert privacy.is_wider("public", "community") and not privacy.is_wider("private", "community")


def _reads(visibility, **facts):
    base = dict(
        is_reporter=False, is_assignee=False, is_staff_in_scope=False, in_community_scope=False, is_supporter=False
    )
    return privacy.may_read(visibility, **{**base, **facts})


def test_who_reads_a_private_issue():
    assert _reads("private", is_reporter=True)
    assert _reads("private", is_staff_in_scope=True, in_community_scope=True)
    assert _reads("private", is_assignee=True)
    assert _reads("private", in_community_scope=True, is_supporter=True)
    # A neighbour who does not support it reads nothing of it.
    assert not _reads("private", in_community_scope=True)
    # Supporting it once does not open it to someone who moved away.
    assert not _reads("private", is_supporter=True)


def test_who_reads_community_and_public_issues():
    for visibility in ("community", "public"):
        assert _reads(visibility, in_community_scope=True)
        assert not _reads(visibility)  # through the API, outside the scope: no (Open311 publishes public ones)
    assert privacy.is_published("public")
    assert not privacy.is_published("community") and not privacy.is_published("private")


def test_an_anonymous_reporter_is_known_to_themself_and_the_staff_in_scope_only():
    assert privacy.may_know_reporter(anonymous=False, is_reporter=False, is_staff_in_scope=False)
    assert privacy.may_know_reporter(anonymous=True, is_reporter=True, is_staff_in_scope=False)
    assert privacy.may_know_reporter(anonymous=True, is_reporter=False, is_staff_in_scope=True)
    assert not privacy.may_know_reporter(anonymous=True, is_reporter=False, is_staff_in_scope=False)


def test_who_reads_text_unmasked():
    assert privacy.sees_text_unmasked(is_reporter=True, knows_reporter=True, handles=False)
    assert privacy.sees_text_unmasked(is_reporter=False, knows_reporter=True, handles=True)
    # The assignee of an anonymous issue: a phone number in it would name the reporter.
    assert not privacy.sees_text_unmasked(is_reporter=False, knows_reporter=False, handles=True)
    assert not privacy.sees_text_unmasked(is_reporter=False, knows_reporter=True, handles=False)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("call me on 13812345678 please", "call me on *********** please"),
        ("手机13912345678。", "手机***********。"),
        ("mobile 138-1234-5678", "mobile ***-****-****"),
        ("mobile 138 1234 5678", "mobile *** **** ****"),
        ("+86 13812345678", "+** ***********"),
        ("+8613812345678", "+*************"),
        ("008613812345678", "***************"),
        ("全角１３８１２３４５６７８", "全角***********"),
        ("office 0951-1234567", "office ****-*******"),
        ("office 010-12345678 ext. 12", "office ***-******** ext. **"),
        ("(0951)1234567", "(****)*******"),
        ("电话：8765432", "电话：*******"),
        ("tel 8765-4321", "tel ****-****"),
        ("身份证 11010519491231002X 是他的", "身份证 ****************** 是他的"),
        ("id 110105194912310021.", "id ******************."),
        ("old id 110105491231002", "old id ***************"),
    ],
)
def test_phone_and_identity_card_numbers_are_masked(text, expected):
    assert privacy.mask_personal_numbers(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Building 7, flat 701, since 2026-11-02 09:30",
        "leak of 12 litres an hour, 3 flats, 1200 yuan",
        "order 123456789012",  # twelve digits: no phone
        "1381234567",  # ten digits: not a mobile
        "23812345678",  # not 1[3-9]
        "room 87654321 of the archive",  # a bare eight-digit number, not named a phone
        "call the 12345 hotline or 110",
    ],
)
def test_other_numbers_are_left_as_typed(text):
    assert privacy.mask_personal_numbers(text) == text
    assert privacy.masked(None) is None
