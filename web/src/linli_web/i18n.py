"""Languages, dates and the words for the platform's codes.

Chinese (zh-CN) by default, English second. The choice: the person's switch (a long-lived cookie, so
it is remembered after signing out), else the browser's Accept-Language, else Chinese. Every text is
a message in `translations/` (English ids, Chinese translations); dates are shown in the city's
time zone (LINLI_TIMEZONE) by Babel, in the reader's language.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from flask import Flask, has_request_context, request
from flask_babel import Babel, format_date, format_datetime, format_decimal, get_locale, get_timezone, lazy_gettext
from flask_babel import gettext as _
from markupsafe import Markup

LOCALES = {"zh": "zh-CN", "en": "en"}  # Babel's name -> the HTML lang / the API's locale
DEFAULT_LOCALE = "zh"
LANG_COOKIE = "linli_lang"
TEXT_COOKIE = "linli_text"
YEAR = 365 * 24 * 3600


def select_locale() -> str:
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in LOCALES:
        return chosen
    best = request.accept_languages.best_match(["zh", "zh-CN", "zh-Hans", "en"], default=None)
    if best and best.startswith("en"):
        return "en"
    return DEFAULT_LOCALE


def html_lang() -> str:
    return LOCALES.get(str(get_locale()), "zh-CN")


def api_locale() -> str:
    """The locale the API takes for the person's SMS and notices."""
    return "en" if str(get_locale()) == "en" else "zh-CN"


def api_language() -> str | None:
    """What the API is asked to speak (`Accept-Language`): the reader's language, so an error message
    or a label the API words reads like the page; nothing outside a page request."""
    return api_locale() if has_request_context() else None


def parse_instant(value: Any) -> datetime | None:
    """An ISO 8601 instant from the API as an aware datetime. A naive one is taken as UTC (the API
    stores UTC; some answers on SQLite lose the offset)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def when(value: Any, style: str = "medium") -> str:
    """A date and time for reading, in the city's time zone and the reader's language."""
    moment = parse_instant(value)
    if moment is None:
        return ""
    english = str(get_locale()) == "en"
    if style == "short":
        return format_datetime(moment, "d MMM HH:mm" if english else "M月d日 HH:mm")
    if style == "medium":
        return format_datetime(moment, "EEE d MMM y, HH:mm" if english else "y年M月d日 EEE HH:mm")
    return format_datetime(moment, style)


def span(start: Any, end: Any, style: str = "medium") -> str:
    """From `start` to `end` for reading: the end's date is left out when it falls on the start's
    day in the city's time zone ("12月12日 09:30–11:00", not the date twice)."""
    first, last = parse_instant(start), parse_instant(end)
    if first is None:
        return ""
    if last is None:
        return when(first, style)
    zone = get_timezone()
    if first.astimezone(zone).date() == last.astimezone(zone).date():
        return f"{when(first, style)}–{format_datetime(last, 'HH:mm')}"
    return f"{when(first, style)} – {when(last, 'short')}"


def day(value: Any) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, date) and not isinstance(value, datetime):
        return format_date(value, "medium")
    try:
        return format_date(date.fromisoformat(str(value)[:10]), "medium")
    except ValueError:
        return str(value)


def _chinese() -> bool:
    return has_request_context() and str(get_locale()) != "en"


def bracketed(text: str) -> str:
    """A remark in brackets after what it qualifies: " (by code)" in English, "（凭码签到）" in Chinese
    (full-width brackets, no space before them). Plain text, for a view model's strings."""
    return f"（{text}）" if _chinese() else f" ({text})"


def aside(text: Any) -> Markup:
    """`bracketed` in a template: the text escaped unless it is markup already (a translated message)."""
    return Markup("（{}）" if _chinese() else " ({})").format(text)


def after_colon() -> str:
    """What follows a label ending with a colon ("Plan:" / "方案："): a space in English; nothing in
    Chinese, whose full-width colon carries its own room."""
    return "" if _chinese() else " "


def number(value: Any) -> str:
    if value is None:
        return ""
    return format_decimal(value)


# The platform's codes, in words. Codes not listed here are shown as the API gives them.
ISSUE_STATUS = {
    "reported": lazy_gettext("Reported"),
    "accepted": lazy_gettext("Accepted"),
    "rejected": lazy_gettext("Not accepted"),
    "duplicate": lazy_gettext("Duplicate"),
    "deliberating": lazy_gettext("Being discussed"),
    "resolving": lazy_gettext("Being fixed"),
    "resolved": lazy_gettext("Resolved"),
    "closed": lazy_gettext("Closed"),
}
URGENCY = {
    "low": lazy_gettext("Can wait"),
    "normal": lazy_gettext("Normal"),
    "high": lazy_gettext("Soon"),
    "urgent": lazy_gettext("Urgent: danger to people"),
}
CATEGORY = {
    "safety_hazard": lazy_gettext("Safety hazard"),
    "repairs_facilities": lazy_gettext("Repairs and facilities"),
    "environment_sanitation": lazy_gettext("Environment and sanitation"),
    "property_management": lazy_gettext("Property management"),
    "parking": lazy_gettext("Parking"),
    "neighbour_dispute": lazy_gettext("Neighbour dispute"),
    "elderly_vulnerable_support": lazy_gettext("Elderly and vulnerable support"),
    "other": lazy_gettext("Other"),
}
CATEGORY_HINT = {
    "safety_hazard": lazy_gettext("Something that could hurt someone: falling tiles, broken railings, exposed wires"),
    "repairs_facilities": lazy_gettext("Leaking roofs, broken lifts, doors, lights, pipes"),
    "environment_sanitation": lazy_gettext("Rubbish, smells, pests, dirty stairwells"),
    "property_management": lazy_gettext("Fees, property company services, owners' committee"),
    "parking": lazy_gettext("Cars and bikes blocking the way, parking spaces"),
    "neighbour_dispute": lazy_gettext("Noise and quarrels between neighbours"),
    "elderly_vulnerable_support": lazy_gettext("Someone living alone or needing help"),
    "other": lazy_gettext("Anything else"),
}
TIER = {
    "compound": lazy_gettext("Compound"),
    "community": lazy_gettext("Community"),
    "street": lazy_gettext("Street office"),
    "city": lazy_gettext("City"),
}
MEETING_TYPE = {
    "bench": lazy_gettext("Bench meeting"),
    "pavilion": lazy_gettext("Pavilion meeting"),
    "round_table": lazy_gettext("Round-table meeting"),
}
MEETING_STATUS = {
    "scheduled": lazy_gettext("Scheduled"),
    "in_progress": lazy_gettext("In progress"),
    "concluded": lazy_gettext("Held"),
    "cancelled": lazy_gettext("Cancelled"),
}
OUTCOME = {
    "adopted": lazy_gettext("Adopted"),
    "rejected": lazy_gettext("Not adopted"),
    "no_quorum": lazy_gettext("No quorum"),
}
VOTE_CHOICE = {"for": lazy_gettext("For"), "against": lazy_gettext("Against"), "abstain": lazy_gettext("Abstain")}
ACTION_STATUS = {
    "open": lazy_gettext("To do"),
    "in_progress": lazy_gettext("Under way"),
    "done": lazy_gettext("Done"),
    "cancelled": lazy_gettext("Cancelled"),
}
ACTIVITY_KIND = {
    "festival": lazy_gettext("Festival"),
    "sports": lazy_gettext("Sports"),
    "culture": lazy_gettext("Culture"),
    "education": lazy_gettext("Learning"),
    "volunteering": lazy_gettext("Volunteering"),
    "service_day": lazy_gettext("Service day"),
    "other": lazy_gettext("Other"),
}
REGISTRATION_STATUS = {
    "confirmed": lazy_gettext("You have a place"),
    "waitlisted": lazy_gettext("On the waiting list"),
    "cancelled": lazy_gettext("Cancelled"),
    "checked_in": lazy_gettext("Checked in"),
}
SERVICE_KIND = {
    "massage": lazy_gettext("Massage"),
    "haircut": lazy_gettext("Haircut"),
    "handcraft": lazy_gettext("Handcraft"),
    "repair": lazy_gettext("Repairs"),
    "meal_delivery": lazy_gettext("Meals delivered"),
    "cleaning": lazy_gettext("Cleaning"),
    "health_check": lazy_gettext("Health check"),
    "other": lazy_gettext("Other"),
}
SKILL = {
    "repair": lazy_gettext("Repairs"),
    "medical": lazy_gettext("Medical"),
    "legal": lazy_gettext("Legal advice"),
    "teaching": lazy_gettext("Teaching"),
    "care": lazy_gettext("Caring for people"),
    "massage": lazy_gettext("Massage"),
    "haircut": lazy_gettext("Haircut"),
    "handcraft": lazy_gettext("Handcraft"),
    "cooking": lazy_gettext("Cooking"),
    "other": lazy_gettext("Other"),
}
PROPOSAL_STATUS = {
    "pending": lazy_gettext("Waiting for an answer"),
    "accepted": lazy_gettext("Accepted"),
    "declined": lazy_gettext("Declined"),
    "withdrawn": lazy_gettext("Withdrawn"),
}
BOOKING_STATUS = {
    "requested": lazy_gettext("Requested"),
    "confirmed": lazy_gettext("Confirmed"),
    "completed": lazy_gettext("Done"),
    "cancelled": lazy_gettext("Cancelled"),
}
NOTICE_CATEGORY = {
    "account": lazy_gettext("Account and codes"),
    "issue_progress": lazy_gettext("Progress of my issues"),
    "new_issue": lazy_gettext("New issues in my community"),
    "escalation": lazy_gettext("Escalations"),
    "meeting": lazy_gettext("Meetings"),
    "reminder": lazy_gettext("Reminders"),
    "decision": lazy_gettext("Decisions"),
    "activity": lazy_gettext("Activities"),
    "registration": lazy_gettext("My sign-ups"),
    "booking": lazy_gettext("My bookings"),
    "broadcast": lazy_gettext("Notices from the community"),
    "safety": lazy_gettext("Safety alerts"),
}
CHANNEL = {"sms": lazy_gettext("Text message (SMS)"), "push": lazy_gettext("App alert")}


def label(table: dict[str, Any], code: Any, fallback: str | None = None) -> str:
    if code is None:
        return ""
    found = table.get(str(code))
    return str(found) if found is not None else (fallback or str(code).replace("_", " "))


def install(app: Flask, timezone: str) -> None:
    app.config["BABEL_DEFAULT_LOCALE"] = DEFAULT_LOCALE
    app.config["BABEL_DEFAULT_TIMEZONE"] = timezone
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = "translations"
    Babel(app, locale_selector=select_locale)
    env = app.jinja_env
    env.globals.update(html_lang=html_lang, get_locale=get_locale, label=label, aside=aside, after_colon=after_colon)
    env.filters.update(when=when, span=span, day=day, number=number)
    for name, table in {
        "ISSUE_STATUS": ISSUE_STATUS,
        "URGENCY": URGENCY,
        "CATEGORY": CATEGORY,
        "CATEGORY_HINT": CATEGORY_HINT,
        "TIER": TIER,
        "MEETING_TYPE": MEETING_TYPE,
        "MEETING_STATUS": MEETING_STATUS,
        "OUTCOME": OUTCOME,
        "ACTION_STATUS": ACTION_STATUS,
        "VOTE_CHOICE": VOTE_CHOICE,
        "ACTIVITY_KIND": ACTIVITY_KIND,
        "REGISTRATION_STATUS": REGISTRATION_STATUS,
        "SERVICE_KIND": SERVICE_KIND,
        "SKILL": SKILL,
        "BOOKING_STATUS": BOOKING_STATUS,
        "PROPOSAL_STATUS": PROPOSAL_STATUS,
        "NOTICE_CATEGORY": NOTICE_CATEGORY,
        "CHANNEL": CHANNEL,
    }.items():
        env.globals[name] = table


def error_text(code: str, status: int) -> str:
    """The words for an API error a person can act on."""
    if code in ("unavailable", "timeout") or status >= 500:
        return _("The platform is not answering just now. Please try again in a minute.")
    if status == 403:
        return _("You are not allowed to do that.")
    if status == 404:
        return _("We could not find that. It may have been removed.")
    if status == 409:
        return _("That cannot be done now: it has changed in the meantime.")
    if status == 429:
        return _("Too many tries. Please wait a minute and try again.")
    return _("Please check what you entered.")
