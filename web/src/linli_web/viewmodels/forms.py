"""Checking what a person typed, field by field, with messages a person understands.

Errors are kept by field name (the input's id), in the order of the form, so the error summary
links to each field. API errors naming fields (`fields` of the error body) are mapped onto the same.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, time
from typing import Any

from flask_babel import gettext as _

PHONE = re.compile(r"^\+?\d{6,15}$")
CODE = re.compile(r"^\d{6}$")
TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


@dataclass
class Form:
    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, data: Mapping[str, Any], names: list[str]) -> Form:
        return cls({n: str(data.get(n, "") or "").strip() for n in names})

    @property
    def ok(self) -> bool:
        return not self.errors

    def error(self, name: str, message: str) -> None:
        self.errors.setdefault(name, message)

    def required(self, name: str, message: str) -> str:
        value = self.values.get(name, "")
        if not value:
            self.error(name, message)
        return value

    def phone(self, name: str = "phone") -> str:
        raw = re.sub(r"[\s-]", "", self.values.get(name, ""))
        if not raw:
            self.error(name, _("Enter your mobile phone number"))
        elif not PHONE.match(raw):
            self.error(name, _("Enter a mobile phone number, like 13812345678"))
        return raw

    def code(self, name: str = "code") -> str:
        raw = re.sub(r"\s", "", self.values.get(name, ""))
        if not raw:
            self.error(name, _("Enter the 6-digit code from the text message"))
        elif not CODE.match(raw):
            self.error(name, _("The code is 6 digits, like 123456"))
        return raw

    def password(self, name: str = "password", *, new: bool = False) -> str:
        value = self.values.get(name, "")
        if not value:
            self.error(name, _("Enter a password") if new else _("Enter your password"))
        elif new and len(value) < 8:
            self.error(name, _("Your password must be at least 8 characters"))
        return value

    def length(self, name: str, *, minimum: int = 0, maximum: int, label: str) -> str:
        value = self.values.get(name, "")
        if minimum and len(value) < minimum:
            self.error(name, _("%(label)s must be at least %(n)d characters", label=label, n=minimum))
        elif len(value) > maximum:
            self.error(name, _("%(label)s must be %(n)d characters or fewer", label=label, n=maximum))
        return value

    def choice(self, name: str, allowed: list[str] | set[str], message: str) -> str:
        value = self.values.get(name, "")
        if value not in allowed:
            self.error(name, message)
        return value

    def day_and_times(
        self, day_field: str, start_field: str, end_field: str, *, missing_day: str
    ) -> tuple[date | None, dict[str, time]]:
        """A day (year-month-day) with start and end times (HH:MM) of the city's wall clock: the
        day, if valid, and the valid times by field name; each missing or ill-typed one is an error."""
        raw_day = self.values[day_field]
        day = None
        if not raw_day:
            self.error(day_field, missing_day)
        else:
            try:
                day = date.fromisoformat(raw_day)
            except ValueError:
                self.error(day_field, _("Enter the day as year-month-day, like 2026-12-24"))
        times: dict[str, time] = {}
        for name, missing in ((start_field, _("Enter when it starts")), (end_field, _("Enter when it ends"))):
            value = self.values[name]
            if not value:
                self.error(name, missing)
            elif not TIME.match(value):
                self.error(name, _("Enter a time like 14:30"))
            else:
                times[name] = time.fromisoformat(value)
        return day, times

    def api_fields(self, fields: Mapping[str, list[str]], mapping: Mapping[str, str] | None = None) -> None:
        """The API named bad fields: show each on the form's field (or on the first field)."""
        for api_name, messages in fields.items():
            name = (mapping or {}).get(api_name, api_name)
            if name not in self.values:
                name = next(iter(self.values), api_name)
            self.error(name, _("Please check this: %(detail)s", detail="; ".join(map(str, messages))))
