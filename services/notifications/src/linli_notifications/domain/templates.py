"""Message templates per kind, channel and locale, and SMS length in segments.

An SMS provider that needs pre-approved templates (Alibaba Cloud) gets the kind and the parameters
and finds the template code its account had approved for them in its configuration (README:
"Alibaba Cloud SMS"); the others get the rendered text. Parameters are checked before anything is
sent.
"""

from __future__ import annotations

import functools
import string
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from linli_kit.errors import Invalid

LOCALES = ("zh-CN", "en")
SIGNATURE = {"zh-CN": "【邻里】", "en": "[Linli] "}
# Alibaba Cloud's limits on what one template variable may carry, by the variable's declared type
# ("variable property", TemplateRule). What its documentation says:
# - verification codes (numberCaptcha): one variable of 4 to 6 digits
#   (https://help.aliyun.com/document_detail/2806243.html, "TemplateRule&TemplateContent参数填写示例");
# - phone numbers (phone_number2): at most 15 characters; times (time): only the system's date and
#   time formats (YYYY-MM-DD, hh:mm, ...), so our "11月30日19:30" is declared as "others" (same page);
# - notification templates applied for since 2018-01-10: a variable of 1 to 35 characters
#   (https://developer.aliyun.com/ask/220871, Alibaba Cloud's answer; the same 35 the issue quotes);
# - a whole template (fixed text and variables) at most 500 characters
#   (https://help.aliyun.com/document_detail/463270.htm, "通知短信模板规范").
# Every variable of ours is declared "others" but `code` (numberCaptcha). Free texts (titles,
# places) are cut to 20 characters before they reach a template, so they fit whatever the type.
MAX_PARAM_LENGTH = 35
CODE_LENGTH = (4, 6)
CODE_VARIABLES = frozenset({"code"})
GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿"
    "abcdefghijklmnopqrstuvwxyzäöñüà"
)


@dataclass(frozen=True)
class Template:
    kind: str
    title: dict[str, str]
    body: dict[str, str]
    # The SMS text when it differs from the body (the text an SMS template is applied for).
    sms: dict[str, str] | None = None

    def sms_text(self, locale: str) -> str:
        return (self.sms or self.body)[locale]


def _t(kind: str, zh: tuple[str, str], en: tuple[str, str], sms: tuple[str, str] | None = None) -> Template:
    texts = {"zh-CN": sms[0], "en": sms[1]} if sms else None
    return Template(kind, {"zh-CN": zh[0], "en": en[0]}, {"zh-CN": zh[1], "en": en[1]}, texts)


TEMPLATES: dict[str, Template] = {
    t.kind: t
    for t in [
        _t(
            "account.code",
            ("验证码", "您的验证码是{code}，{minutes}分钟内有效，请勿告诉他人。"),
            ("Verification code", "Your code is {code}, valid for {minutes} minutes. Do not share it."),
        ),
        _t(
            "issue.reported",
            ("新议题", "{community}有新议题：{title}（{urgency}）"),
            ("New issue", "New issue in {community}: {title} ({urgency})"),
        ),
        _t(
            "issue.progress",
            ("议题进展", "您关注的议题“{title}”状态更新为：{status}"),
            ("Issue update", 'The issue "{title}" you follow is now: {status}'),
        ),
        _t(
            "issue.escalated",
            ("议题升级", "议题“{title}”已升级至{tier}层级处理，请关注。"),
            ("Issue escalated", 'The issue "{title}" was escalated to the {tier} level.'),
        ),
        _t(
            "issue.overdue",
            ("议题逾期", "议题“{title}”已超过处理期限，请尽快处理。"),
            ("Issue overdue", 'The issue "{title}" is past its deadline.'),
        ),
        _t(
            "issue.on_agenda",
            ("议题上会", "您关注的议题“{title}”将在{when}的{meeting}上讨论。"),
            ("Issue on the agenda", 'The issue "{title}" will be discussed at {meeting} on {when}.'),
        ),
        _t(
            "meeting.scheduled",
            ("会议通知", "{meeting}定于{when}在{place}召开，欢迎参加。"),
            ("Meeting", "{meeting} will be held on {when} at {place}."),
        ),
        _t(
            "meeting.rescheduled",
            ("会议改期", "{meeting}改期至{when}，地点：{place}。"),
            ("Meeting moved", "{meeting} moved to {when} at {place}."),
        ),
        _t(
            "meeting.cancelled",
            ("会议取消", "原定{when}的{meeting}已取消：{reason}"),
            ("Meeting cancelled", "{meeting} on {when} is cancelled: {reason}"),
        ),
        _t(
            "meeting.reminder",
            ("会议提醒", "提醒：{meeting}将于{when}在{place}召开。"),
            ("Meeting reminder", "Reminder: {meeting} on {when} at {place}."),
        ),
        _t(
            "decision.recorded",
            ("议事结果", "{meeting}议题“{motion}”表决结果：{outcome}"),
            ("Decision", 'At {meeting}, the motion "{motion}" was {outcome}.'),
        ),
        _t(
            "action_item.assigned",
            ("任务分派", "您被指派任务：{title}，期限{due}。"),
            ("Action item", "You were assigned: {title}, due {due}."),
        ),
        _t(
            "action_item.completed",
            ("任务完成", "任务“{title}”已完成。"),
            ("Action item done", 'The action item "{title}" is done.'),
        ),
        _t(
            "activity.published",
            ("新活动", "新活动：{title}，{when}，{place}。"),
            ("New activity", "New activity: {title}, {when}, {place}."),
        ),
        _t(
            "activity.rescheduled",
            ("活动改期", "活动{title}改期至{when}。"),
            ("Activity moved", "The activity {title} moved to {when}."),
        ),
        _t(
            "activity.cancelled",
            ("活动取消", "活动{title}（{when}）已取消：{reason}"),
            ("Activity cancelled", "The activity {title} ({when}) is cancelled: {reason}"),
        ),
        _t(
            "activity.reminder",
            ("活动提醒", "提醒：活动{title}将于{when}开始。"),
            ("Activity reminder", "Reminder: {title} starts on {when}."),
        ),
        _t(
            "registration.confirmed",
            ("报名成功", "您已成功报名{title}（{when}）。"),
            ("Registered", "You are registered for {title} ({when})."),
        ),
        _t(
            "registration.waitlisted",
            ("候补中", "{title}名额已满，您在候补第{position}位。"),
            ("Waiting list", "{title} is full; you are number {position} on the waiting list."),
        ),
        _t(
            "registration.promoted",
            ("候补成功", "好消息：您已从候补转为正式报名{title}（{when}）。"),
            ("You got a place", "Good news: you now have a place at {title} ({when})."),
        ),
        _t(
            "registration.cancelled",
            ("报名取消", "您对{title}的报名已取消。"),
            ("Registration cancelled", "Your registration for {title} is cancelled."),
        ),
        _t(
            "booking.requested",
            ("服务预约", "新的服务预约：{service}，{when}。"),
            ("Service booking", "New booking: {service}, {when}."),
        ),
        _t(
            "booking.confirmed",
            ("预约确认", "您预约的{service}已确认：{when}。"),
            ("Booking confirmed", "Your {service} is confirmed for {when}."),
        ),
        _t(
            "talent.vetted",
            ("人才库审核", "您登记的技能审核{outcome}。"),
            ("Talent pool", "Your entry was {outcome}."),
        ),
        _t(
            "talent.matched",
            ("邻里需要您", "社区邀请您帮忙：{note}。请在应用中接受或婉拒。"),
            ("Neighbours need you", "The community asks for your help: {note}. Accept or decline in the app."),
        ),
        _t(
            "talent.answered",
            ("人才回复", "您的邀请已被{answer}。"),
            ("Talent answered", "Your request was {answer}."),
        ),
        _t(
            "proposal.submitted",
            ("议事提议", "居民提议就“{issue}”召开{meeting_type}：{reason}"),
            ("Meeting proposed", 'A resident proposes a {meeting_type} on "{issue}": {reason}'),
        ),
        _t(
            "proposal.accepted",
            ("提议已采纳", "您提议的会议已安排：{title}，{when}，{place}。"),
            ("Proposal accepted", "The meeting you proposed is set: {title}, {when}, {place}."),
        ),
        _t(
            "proposal.declined",
            ("提议未采纳", "您就“{issue}”提议的会议未被采纳：{reason}"),
            ("Proposal declined", 'Your proposal on "{issue}" was declined: {reason}'),
        ),
        _t(
            "activity_proposal.submitted",
            ("活动提议", "居民提议举办活动：{title}。{reason}"),
            ("Activity proposed", "A resident proposes an activity: {title}. {reason}"),
        ),
        _t(
            "activity_proposal.accepted",
            ("活动提议已采纳", "您提议的活动已安排：{title}，{when}。"),
            ("Activity proposal accepted", "The activity you proposed is set: {title}, {when}."),
        ),
        _t(
            "activity_proposal.declined",
            ("活动提议未采纳", "您提议的活动“{title}”未被采纳：{reason}"),
            ("Activity proposal declined", 'Your proposed activity "{title}" was declined: {reason}'),
        ),
        _t(
            "decision.completed",
            ("决议落实", "“{issue}”的决议任务已全部完成。"),
            ("Decision carried out", 'Every action item decided on "{issue}" is done.'),
        ),
        _t(
            "broadcast.notice",
            ("{title}", "{title}：{body}"),
            ("{title}", "{title}: {body}"),
            # A template of variables only is not approved: the SMS says what it is. `body` is
            # one variable (35 characters): a longer broadcast is refused for SMS when Alibaba
            # Cloud may carry it (service_layer/broadcasts.py).
            sms=("社区通知：{title}。{body}", "Community notice: {title}. {body}"),
        ),
    ]
}


@dataclass(frozen=True)
class Rendered:
    title: str
    body: str
    sms_text: str
    sms_params: dict[str, str]  # the SMS template's variables, by name
    segments: int


@functools.lru_cache(maxsize=512)
def _placeholders(text: str) -> frozenset[str]:
    return frozenset(name for _, name, _, _ in string.Formatter().parse(text) if name)


@functools.lru_cache(maxsize=512)
def _names(title: str, body: str, sms: str) -> tuple[tuple[str, ...], frozenset[str]]:
    """The names a template's title, body and SMS text fill in, sorted, and those of its SMS text:
    worked out once per template and language (a batch of events renders hundreds of times)."""
    sms_names = _placeholders(sms)
    return tuple(sorted(_placeholders(title) | _placeholders(body) | sms_names)), sms_names


def placeholders(text: str) -> set[str]:
    """The names a template's text fills in (parsed once per text: every render asks for three)."""
    return set(_placeholders(text))


# Words that travel in events as English keys, shown in the recipient's language.
LABELS_ZH = {
    "reported": "已上报",
    "accepted": "已受理",
    "rejected": "未受理",
    "duplicate": "重复",
    "deliberating": "协商中",
    "resolving": "办理中",
    "resolved": "已解决",
    "closed": "已办结",
    "reopened": "重新打开",
    "assigned": "已分派",
    "compound": "小区",
    "community": "社区",
    "street": "街道",
    "city": "市级",
    "low": "一般",
    "normal": "普通",
    "high": "紧急",
    "urgent": "特急",
    "adopted": "通过",
    "no_quorum": "未达法定人数",
}
LABELLED = ("status", "tier", "urgency", "outcome")
# Words whose rendering depends on the parameter they fill (the same key reads differently: a
# talent's entry "declined" is 未通过, their answer "declined" is 婉拒), by language. A value not
# listed (a community's own meeting type) is shown as it came.
PARAM_LABELS: dict[str, dict[str, dict[str, str]]] = {
    "zh-CN": {
        "outcome": {"approved": "通过", "declined": "未通过"},
        "answer": {"accepted": "接受", "declined": "婉拒"},
        "meeting_type": {"bench": "板凳会", "pavilion": "凉亭会", "round_table": "圆桌会"},
    },
    "en": {
        "meeting_type": {
            "bench": "bench meeting",
            "pavilion": "pavilion meeting",
            "round_table": "round-table meeting",
        },
    },
}


def render(kind: str, locale: str, params: dict[str, Any], timezone: str = "Asia/Shanghai") -> Rendered:
    """Render a template; raise Invalid naming missing or oversized parameters.

    `params["when_at"]` (ISO 8601) becomes `when` in the recipient's time zone and language.
    """
    template, locale, values, body, sms_params = _checked(kind, locale, params, timezone)
    sms_text = SIGNATURE[locale] + template.sms_text(locale).format(**values)
    return Rendered(
        title=template.title[locale].format(**values),
        body=body,
        sms_text=sms_text,
        sms_params=sms_params,
        segments=sms_segments(sms_text),
    )


def render_notice(kind: str, locale: str, params: dict[str, Any], timezone: str = "Asia/Shanghai") -> tuple[str, str]:
    """The title and body `render` gives (what an inbox entry keeps), refused as `render` refuses:
    planning renders a batch's every group of recipients, and needs no SMS text."""
    template, locale, values, body, _sms_params = _checked(kind, locale, params, timezone)
    return template.title[locale].format(**values), body


def _checked(
    kind: str, locale: str, params: dict[str, Any], timezone: str
) -> tuple[Template, str, dict[str, str], str, dict[str, str]]:
    """`render`'s checks: (the template, the language used, the values by name as text, the body,
    the SMS template's variables); Invalid naming missing or oversized parameters."""
    template = TEMPLATES.get(kind)
    if template is None:
        raise Invalid("no template for {kind}", fields={"kind": ["unknown template"]}, kind=kind)
    locale = locale if locale in LOCALES else "zh-CN"
    params = dict(params)
    if params.get("when_at"):
        params["when"] = format_when(params["when_at"], timezone, locale)
    labelled: set[str] = set()
    for key, labels in PARAM_LABELS.get(locale, {}).items():
        if str(params.get(key)) in labels:
            params[key] = labels[str(params[key])]
            labelled.add(key)
    if locale == "zh-CN":
        for key in LABELLED:
            if key in params and key not in labelled:
                params[key] = LABELS_ZH.get(str(params[key]), params[key])
    needed, sms_names = _names(template.title[locale], template.body[locale], template.sms_text(locale))
    problems: dict[str, list[str]] = {}
    values: dict[str, str] = {}
    for name in needed:
        value = params.get(name)
        text = "" if value is None else str(value)
        if text == "":
            problems[name] = ["missing template parameter"]
        else:
            values[name] = text
    if problems:
        raise Invalid("template {kind} lacks parameters", fields=problems, kind=kind)
    body = template.body[locale].format(**values)
    sms_params = {k: v for k, v in values.items() if k in sms_names}
    # A broadcast's body is checked where it is written (and by the Alibaba Cloud adapter), since
    # providers of free text (Twilio) carry a long one.
    too_long = [k for k, v in sms_params.items() if len(v) > MAX_PARAM_LENGTH and kind != "broadcast.notice"]
    if too_long:
        raise Invalid("template parameters too long", fields={k: ["longer than 35 characters"] for k in too_long})
    return template, locale, values, body, sms_params


def sms_variables(kind: str, locale: str = "zh-CN") -> list[str]:
    """The variables of the SMS template of `kind` (what its Alibaba Cloud template declares)."""
    return sorted(placeholders(TEMPLATES[kind].sms_text(locale)))


def variable_problem(name: str, value: str) -> str | None:
    """Why Alibaba Cloud would refuse `value` for the variable `name`, or None (see the limits above)."""
    if name in CODE_VARIABLES:
        low, high = CODE_LENGTH
        if not (value.isdigit() and low <= len(value) <= high):
            return f"a verification code is {low} to {high} digits"
        return None
    if not 1 <= len(value) <= MAX_PARAM_LENGTH:
        return f"a template variable is 1 to {MAX_PARAM_LENGTH} characters"
    return None


def sms_segments(text: str) -> int:
    """Segments an SMS takes: GSM-7 fits 160 (153 per part), anything else UCS-2 70 (67 per part)."""
    if GSM7.issuperset(text):  # every character GSM-7 (a set's own loop, not one per character here)
        single, part = 160, 153
    else:
        single, part = 70, 67
    if len(text) <= single:
        return 1
    return -(-len(text) // part)


def shorten(value: str | None, limit: int = 20) -> str:
    """Cut a free text (a title) so it fits a template variable."""
    if not value:
        return ""
    return value if len(value) <= limit else value[: limit - 1] + "…"


def format_when(value: str | datetime, timezone: str, locale: str) -> str:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else value
    local = moment.astimezone(ZoneInfo(timezone))
    if locale == "en":
        return local.strftime("%d %b %H:%M")
    return f"{local.month}月{local.day}日{local:%H:%M}"
