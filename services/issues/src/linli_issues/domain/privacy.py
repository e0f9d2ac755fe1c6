"""Who may read an issue, who may know who reported it, and what of its text others may see.

Plain rules over plain facts (DESIGN section 4, publication), no framework:

- **Publication** of a category: `public` (its issues are published: Open311 lists them),
  `community` (the people of the issue's community read them) or `private` (only the reporter, the
  supporters, the staff whose scope covers the community and the organisation it is assigned to).
  The city chooses per category; anything about a person defaults to private.
- **Visibility** of an issue: its category's publication, made private when it was reported
  anonymously or staff marked it private.
- **The reporter** of an anonymous issue is known only to themself and the staff whose scope covers
  its community; to everyone else (neighbours, supporters, the assignee, clients) it is nobody.
- **Text others see** (anyone but the reporter and those who know the reporter and handle the
  issue) has phone numbers and identity-card numbers masked.
"""

from __future__ import annotations

import re

PUBLIC, COMMUNITY, PRIVATE = "public", "community", "private"
# From the widest to the narrowest.
PUBLICATIONS = (PUBLIC, COMMUNITY, PRIVATE)
# Categories about a person (their health, age, family, a quarrel with a neighbour): private unless
# the city decides otherwise.
PERSONAL_CATEGORIES = frozenset({"elderly_vulnerable_support", "neighbour_dispute"})


def default_publication(category_key: str) -> str:
    """What a category publishes when the city has not said: private about a person, else community."""
    return PRIVATE if category_key in PERSONAL_CATEGORIES else COMMUNITY


def narrower(first: str, second: str) -> str:
    """The narrower of two publications (private is narrower than community, narrower than public)."""
    return max(first, second, key=PUBLICATIONS.index)


def is_wider(publication: str, than: str) -> bool:
    return PUBLICATIONS.index(publication) < PUBLICATIONS.index(than)


def visibility(publication: str, *, anonymous: bool, marked_private: bool) -> str:
    """An issue's visibility: its category's publication, private when anonymous or staff-marked."""
    if publication not in PUBLICATIONS:
        raise ValueError(f"unknown publication {publication!r}")
    return PRIVATE if anonymous or marked_private else publication


def may_read(
    visibility_of_issue: str,
    *,
    is_reporter: bool,
    is_assignee: bool,
    is_staff_in_scope: bool,
    in_community_scope: bool,
    is_supporter: bool,
) -> bool:
    """Whether someone may read an issue, from what they are to it.

    `in_community_scope`: the issue's community is within the reader's scope (their community, the
    communities of their street, the whole city). Open311's publication of public issues is not
    reading through the API: it is decided by `is_published`.
    """
    if is_reporter or is_assignee or is_staff_in_scope:
        return True
    if not in_community_scope:
        return False
    if visibility_of_issue == PRIVATE:
        return is_supporter
    return True


def is_published(visibility_of_issue: str) -> bool:
    """Whether the issue appears in Open311 (to anyone, without a key)."""
    return visibility_of_issue == PUBLIC


def may_know_reporter(*, anonymous: bool, is_reporter: bool, is_staff_in_scope: bool) -> bool:
    """An anonymous reporter is known to themself and the staff of the issue's scope only (not to
    neighbours, supporters, the assignee organisation or API clients)."""
    return not anonymous or is_reporter or is_staff_in_scope


def sees_text_unmasked(*, is_reporter: bool, knows_reporter: bool, handles: bool) -> bool:
    """Who reads the issue's text as typed (phone numbers included): the reporter, and those who
    handle it (staff in scope, the assignee) when they may also know who reported it."""
    return is_reporter or (knows_reporter and handles)


# --- masking ----------------------------------------------------------------------------------------
# ASCII and full-width digits (a phone keyboard in Chinese mode types the latter).
_D = "[0-9\uff10-\uff19]"
_SEP = "[ \\-\u2010-\u2015\u2212\uff0d]?"
_NOT_DIGIT_BEFORE = "(?<![0-9\uff10-\uff19])"
_NOT_DIGIT_AFTER = "(?![0-9\uff10-\uff19])"
_ONE = "[1\uff11]"
_ZERO = "[0\uff10]"
_X = "[Xx\uff38\uff58]"

# An identity card: 17 digits and a check digit or X (a 15-digit first-generation one too).
_ID_CARD = re.compile(f"{_NOT_DIGIT_BEFORE}(?:{_D}{{17}}(?:{_D}|{_X})|{_D}{{15}})(?![0-9\uff10-\uff19A-Za-z])")
# A mainland mobile number, 1[3-9] and nine digits, possibly grouped 3-4-4, possibly after +86.
_MOBILE = re.compile(
    f"{_NOT_DIGIT_BEFORE}(?:(?:\\+|\uff0b|00)?86{_SEP})?{_ONE}[3-9\uff13-\uff19]{_D}{_SEP}{_D}{{4}}{_SEP}{_D}{{4}}"
    f"{_NOT_DIGIT_AFTER}"
)
# A landline with its area code (010, 0951...), possibly in brackets, possibly with an extension.
_LANDLINE = re.compile(
    f"{_NOT_DIGIT_BEFORE}(?:[(\uff08]{_ZERO}{_D}{{2,3}}[)\uff09]{_SEP}|{_ZERO}{_D}{{2,3}}{_SEP})"
    f"{_D}{{3,4}}{_SEP}{_D}{{4}}(?:\\s?(?:-|\u8f6c|ext\\.?)\\s?{_D}{{1,5}})?{_NOT_DIGIT_AFTER}"
)
# A local number of 7 or 8 digits named as a phone number ("电话 8765432", "tel: 87654321").
_NAMED_LOCAL = re.compile(
    f"((?:\u7535\u8bdd|\u624b\u673a|\u5ea7\u673a|\u8054\u7cfb\u65b9\u5f0f|\u8054\u7cfb|tel|phone)[\\s:\uff1a]*)"
    f"({_NOT_DIGIT_BEFORE}{_D}{{3,4}}{_SEP}{_D}{{4}}{_NOT_DIGIT_AFTER})",
    re.IGNORECASE,
)
_DIGIT = re.compile(_D)


def _blank(match: re.Match[str]) -> str:
    return _DIGIT.sub("*", match.group(0))


def mask_personal_numbers(text: str) -> str:
    """`text` with every digit of phone numbers (mobiles, landlines with their area code, local
    numbers named as a phone) and identity-card numbers replaced by `*`; the rest as typed."""
    text = _ID_CARD.sub(lambda m: "*" * len(m.group(0)), text)
    text = _MOBILE.sub(_blank, text)
    text = _LANDLINE.sub(_blank, text)
    return _NAMED_LOCAL.sub(lambda m: m.group(1) + _DIGIT.sub("*", m.group(2)), text)


def masked(text: str | None) -> str | None:
    return None if text is None else mask_personal_numbers(text)
