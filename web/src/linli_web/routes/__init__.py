"""Thin blueprints: read the request, call a view model, render a template or redirect."""

from __future__ import annotations

from flask import Flask


def register(app: Flask) -> None:
    from linli_web.routes import (
        account,
        activities,
        admin,
        auth,
        desk,
        desk_activities,
        desk_meetings,
        home,
        inbox,
        issues,
        meetings,
        noticeboard,
        overview,
        prefs,
        proposals,
        report,
        search,
        services,
        system,
    )

    for module in (
        system, prefs, auth, home, report, issues, meetings, activities, services, inbox, account, desk,
        desk_meetings, desk_activities, overview, admin, noticeboard, proposals, search,
    ):  # fmt: skip
        app.register_blueprint(module.bp)
