"""HTTP API of the meetings service. The gateway forwards /api/v1/meetings/<rest> here as /<rest>.

Thin views: parse with the schemas, call a use case with the verified caller, dump the result.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import Response, current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from linli_kit import search
from linli_kit.web import current_principal, require_principal
from linli_meetings.domain.decision import Choice, DocumentKind
from linli_meetings.entrypoints import schemas as s
from linli_meetings.service_layer import calendar, candidates, decisions, meetings, noticeboard, proposals, stats
from linli_meetings.service_layer.unit_of_work import MeetingsUnitOfWork

blp = Blueprint("meetings", __name__, url_prefix="/", description="Meetings, agenda, attendance, decisions")

ICS = "text/calendar; charset=utf-8"


def _uow() -> MeetingsUnitOfWork:
    settings = current_app.extensions["linli.settings"]
    clock = current_app.extensions.get("meetings.clock")
    kwargs = {"clock": clock} if clock else {}
    return MeetingsUnitOfWork(current_app.extensions["linli.database"], timezone=settings.timezone, **kwargs)


def plain(value: Any) -> Any:
    """UUIDs from the schemas as the strings the core stores."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


# --- meetings ---------------------------------------------------------------------------------------
@blp.route("")
class Meetings(MethodView):
    @blp.arguments(s.MeetingFilter(), location="query")
    @blp.response(200, s.MeetingOut(many=True))
    @blp.paginate()
    def get(self, filters: dict, pagination_parameters: Any) -> list:
        principal = require_principal()
        filters = plain(filters)
        if filters.pop("mine"):
            filters["participant_id"] = principal.user_id
        page = meetings.list_meetings(
            _uow(), principal, offset=pagination_parameters.first_item, limit=pagination_parameters.page_size, **filters
        )
        pagination_parameters.item_count = page.total
        # Sent as built: MeetingOut documents the answer, s.listed_meetings writes what it dumps.
        return current_app.json.response(s.listed_meetings(page.rows, page.agenda, page.counts))

    @blp.arguments(s.MeetingIn())
    @blp.response(201, s.MeetingOut)
    def post(self, body: dict) -> Any:
        meeting = meetings.schedule_meeting(_uow(), require_principal(), plain(body))
        # Sent as built, as a listed meeting is (the caller wrote the agenda: nothing is hidden).
        agenda = [
            (i.id, i.position, i.title, i.duration_minutes, i.issue_id, i.notes) for i in meeting.ordered_agenda()
        ]
        [out] = s.listed_meetings([meeting], {meeting.id: agenda}, {meeting.id: meeting.counts})
        return current_app.json.response(out), 201


MeetingSearchQuery = search.search_query_schema(["meeting"], name="MeetingSearchQuery")


@blp.route("search")
class Search(MethodView):
    @blp.arguments(MeetingSearchQuery, location="query")
    @blp.response(200, search.HitSchema(many=True))
    def get(self, query: dict) -> list:
        """Find the meetings you may see by words of their title or description, Chinese or not
        (titles holding every word first, then the latest)."""
        terms = search.terms_of(query["q"])
        rows = meetings.search_meetings(_uow(), require_principal(), terms, query["limit"])
        return [
            {
                "kind": "meeting",
                "id": row.id,
                "title": row.title,
                "snippet": search.snippet([row.description], terms),
                "community_id": row.community_id,
                "date": search.instant(row.starts_at),
                "score": search.score(bool(row.in_title)),
            }
            for row in rows
        ]


@blp.route("series")
class Series(MethodView):
    @blp.arguments(s.SeriesIn)
    @blp.response(201, s.MeetingOut(many=True))
    def post(self, body: dict) -> list:
        """A recurring meeting: every occurrence, in the city's time zone."""
        return meetings.schedule_series(_uow(), require_principal(), plain(body))


@blp.route("<uuid:meeting_id>")
class MeetingById(MethodView):
    @blp.response(200, s.MeetingOut)
    def get(self, meeting_id: uuid.UUID) -> Any:
        return meetings.get_meeting(_uow(), require_principal(), str(meeting_id))

    @blp.arguments(s.MeetingPatch)
    @blp.response(200, s.MeetingOut)
    def patch(self, body: dict, meeting_id: uuid.UUID) -> Any:
        return meetings.update_meeting(_uow(), require_principal(), str(meeting_id), plain(body))


@blp.route("<uuid:meeting_id>/reschedule", methods=["POST"])
@blp.arguments(s.RescheduleIn)
@blp.response(200, s.MeetingOut)
def reschedule(body: dict, meeting_id: uuid.UUID) -> Any:
    return meetings.reschedule_meeting(_uow(), require_principal(), str(meeting_id), **body)


@blp.route("<uuid:meeting_id>/cancel", methods=["POST"])
@blp.arguments(s.CancelIn)
@blp.response(200, s.MeetingOut)
def cancel(body: dict, meeting_id: uuid.UUID) -> Any:
    return meetings.cancel_meeting(_uow(), require_principal(), str(meeting_id), reason=body["reason"])


@blp.route("<uuid:meeting_id>/start", methods=["POST"])
@blp.response(200, s.MeetingOut)
def start(meeting_id: uuid.UUID) -> Any:
    return meetings.start_meeting(_uow(), require_principal(), str(meeting_id))


@blp.route("<uuid:meeting_id>/conclude", methods=["POST"])
@blp.arguments(s.ConcludeIn)
@blp.response(200, s.MeetingOut)
def conclude(body: dict, meeting_id: uuid.UUID) -> Any:
    return meetings.conclude_meeting(_uow(), require_principal(), str(meeting_id), body)


@blp.route("<uuid:meeting_id>/minutes", methods=["PUT"])
@blp.arguments(s.MinutesIn)
@blp.response(200, s.MeetingOut)
def minutes(body: dict, meeting_id: uuid.UUID) -> Any:
    """Minutes, closing report, head count and photos, during the meeting or written up after it."""
    return meetings.record_minutes(_uow(), require_principal(), str(meeting_id), body)


@blp.route("<uuid:meeting_id>/checkin-code", methods=["GET"])
@blp.response(200, s.CodeOut)
def show_checkin_code(meeting_id: uuid.UUID) -> dict:
    """The code to show at the meeting (staff only)."""
    return {"code": meetings.checkin_code(_uow(), require_principal(), str(meeting_id))}


# --- agenda -----------------------------------------------------------------------------------------
@blp.route("<uuid:meeting_id>/agenda", methods=["POST"])
@blp.arguments(s.AgendaItemIn)
@blp.response(201, s.AgendaItemOut)
def add_agenda_item(body: dict, meeting_id: uuid.UUID) -> Any:
    return meetings.add_agenda_item(_uow(), require_principal(), str(meeting_id), plain(body))


@blp.route("<uuid:meeting_id>/agenda/<uuid:item_id>")
class AgendaItemById(MethodView):
    @blp.arguments(s.AgendaItemPatch)
    @blp.response(200, s.AgendaItemOut)
    def patch(self, body: dict, meeting_id: uuid.UUID, item_id: uuid.UUID) -> Any:
        return meetings.update_agenda_item(_uow(), require_principal(), str(meeting_id), str(item_id), body)

    @blp.response(204)
    def delete(self, meeting_id: uuid.UUID, item_id: uuid.UUID) -> None:
        meetings.remove_agenda_item(_uow(), require_principal(), str(meeting_id), str(item_id))


# --- participants and attendance ----------------------------------------------------------------------------
@blp.route("<uuid:meeting_id>/participants")
class Participants(MethodView):
    @blp.response(200, s.ParticipantOut(many=True))
    def get(self, meeting_id: uuid.UUID) -> list:
        return meetings.list_participants(_uow(), require_principal(), str(meeting_id))

    @blp.arguments(s.InviteIn)
    @blp.response(201, s.ParticipantOut)
    def post(self, body: dict, meeting_id: uuid.UUID) -> Any:
        """Invite someone (a user, or a body's representative by name)."""
        return meetings.invite(_uow(), require_principal(), str(meeting_id), plain(body))


@blp.route("<uuid:meeting_id>/participants/<uuid:participant_id>")
class ParticipantById(MethodView):
    @blp.arguments(s.ParticipantPatch)
    @blp.response(200, s.ParticipantOut)
    def patch(self, body: dict, meeting_id: uuid.UUID, participant_id: uuid.UUID) -> Any:
        """Mark a participant as a party member, or correct the mark (the community's staff)."""
        return meetings.mark_party_member(
            _uow(), require_principal(), str(meeting_id), str(participant_id), body["party_member"]
        )

    @blp.response(200, s.ParticipantOut)
    def delete(self, meeting_id: uuid.UUID, participant_id: uuid.UUID) -> Any:
        """Cancel a registration (its owner or staff); the first on the waiting list moves up."""
        return meetings.cancel_registration(_uow(), require_principal(), str(meeting_id), str(participant_id))


@blp.route("<uuid:meeting_id>/participants/<uuid:participant_id>/check-in", methods=["POST"])
@blp.response(200, s.ParticipantOut)
def staff_check_in(meeting_id: uuid.UUID, participant_id: uuid.UUID) -> Any:
    return meetings.check_in_participant(_uow(), require_principal(), str(meeting_id), str(participant_id))


@blp.route("<uuid:meeting_id>/check-in", methods=["POST"])
@blp.arguments(s.CodeIn)
@blp.response(200, s.ParticipantOut)
def code_check_in(body: dict, meeting_id: uuid.UUID) -> Any:
    """Check yourself in with the code shown at the meeting."""
    return meetings.check_in_with_code(_uow(), require_principal(), str(meeting_id), body["code"])


@blp.route("<uuid:meeting_id>/invitation", methods=["POST"])
@blp.arguments(s.InvitationAnswer)
@blp.response(200, s.ParticipantOut)
def answer_invitation(body: dict, meeting_id: uuid.UUID) -> Any:
    return meetings.respond_to_invitation(
        _uow(), require_principal(), str(meeting_id), confirmed=body["response"] == "confirmed"
    )


@blp.route("<uuid:meeting_id>/registrations", methods=["POST"])
@blp.arguments(s.RegistrationIn)
@blp.response(201, s.ParticipantOut)
def register(body: dict, meeting_id: uuid.UUID) -> Any:
    """Register for an open meeting: a seat while capacity lasts, else the waiting list."""
    return meetings.register(_uow(), require_principal(), str(meeting_id), body.get("name"))


# --- motions, votes, decisions -----------------------------------------------------------------------------
@blp.route("<uuid:meeting_id>/motions")
class Motions(MethodView):
    @blp.response(200, s.DecisionOut(many=True))
    def get(self, meeting_id: uuid.UUID) -> list:
        return decisions.list_decisions(_uow(), require_principal(), str(meeting_id))

    @blp.arguments(s.MotionIn)
    @blp.response(201, s.DecisionOut)
    def post(self, body: dict, meeting_id: uuid.UUID) -> decisions.MotionView:
        return decisions.open_motion(_uow(), require_principal(), str(meeting_id), plain(body))


@blp.route("<uuid:meeting_id>/motions/<uuid:decision_id>")
class MotionById(MethodView):
    @blp.response(200, s.DecisionOut)
    def get(self, meeting_id: uuid.UUID, decision_id: uuid.UUID) -> decisions.MotionView:
        return decisions.get_decision(_uow(), require_principal(), str(meeting_id), str(decision_id))

    @blp.response(204)
    def delete(self, meeting_id: uuid.UUID, decision_id: uuid.UUID) -> None:
        decisions.withdraw_motion(_uow(), require_principal(), str(meeting_id), str(decision_id))


@blp.route("<uuid:meeting_id>/motions/<uuid:decision_id>/votes", methods=["POST"])
@blp.arguments(s.VoteIn())
@blp.response(201, s.VoteOut)
def vote(body: dict, meeting_id: uuid.UUID, decision_id: uuid.UUID) -> Any:
    """Your vote: once, and only while checked in as a voting member; 409 once the motion is recorded."""
    return decisions.cast_vote(_uow(), require_principal(), str(meeting_id), str(decision_id), Choice(body["choice"]))


@blp.route("<uuid:meeting_id>/motions/<uuid:decision_id>/tally", methods=["PUT"])
@blp.arguments(s.TallyIn)
@blp.response(200, s.DecisionOut)
def tally(body: dict, meeting_id: uuid.UUID, decision_id: uuid.UUID) -> decisions.MotionView:
    """Show-of-hands counts, recorded by the chair."""
    return decisions.record_tally(_uow(), require_principal(), str(meeting_id), str(decision_id), body)


@blp.route("<uuid:meeting_id>/motions/<uuid:decision_id>/record", methods=["POST"])
@blp.response(200, s.DecisionOut)
def record(meeting_id: uuid.UUID, decision_id: uuid.UUID) -> decisions.MotionView:
    """Close the vote: outcome under the rules of procedure, action items, issue effect; with the
    votes counted."""
    return decisions.record_decision(_uow(), require_principal(), str(meeting_id), str(decision_id))


# --- calendar -------------------------------------------------------------------------------------------
@blp.route("<uuid:meeting_id>.ics", methods=["GET"])
@blp.doc(security=[], responses={"200": {"content": {"text/calendar": {}}}})
def meeting_ics(meeting_id: uuid.UUID) -> Response:
    """The meeting as iCalendar; public meetings need no token."""
    body = calendar.meeting_calendar(_uow(), current_principal(required=False), str(meeting_id))
    return Response(body, content_type=ICS)


@blp.route("calendar/<uuid:community_id>.ics", methods=["GET"])
@blp.doc(security=[], responses={"200": {"content": {"text/calendar": {}}}})
def community_ics(community_id: uuid.UUID) -> Response:
    """A community's meetings feed: public meetings, plus what a signed-in caller may see."""
    body = calendar.community_feed(_uow(), current_principal(required=False), str(community_id))
    return Response(body, content_type=ICS)


# --- action items ----------------------------------------------------------------------------------------
@blp.route("action-items", methods=["GET"])
@blp.arguments(s.ActionItemFilter, location="query")
@blp.response(200, s.ActionItemOut(many=True))
@blp.paginate()
def list_action_items(filters: dict, pagination_parameters: Any) -> list:
    items, total = decisions.list_action_items(
        _uow(),
        require_principal(),
        offset=pagination_parameters.first_item,
        limit=pagination_parameters.page_size,
        **plain(filters),
    )
    pagination_parameters.item_count = total
    return items


@blp.route("action-items/<uuid:item_id>")
class ActionItemById(MethodView):
    @blp.response(200, s.ActionItemOut)
    def get(self, item_id: uuid.UUID) -> Any:
        return decisions.get_action_item(_uow(), require_principal(), str(item_id))

    @blp.arguments(s.ActionItemPatch)
    @blp.response(200, s.ActionItemOut)
    def patch(self, body: dict, item_id: uuid.UUID) -> Any:
        return decisions.update_action_item(_uow(), require_principal(), str(item_id), plain(body))


# --- community documents, rules, types, candidates ----------------------------------------------------------
@blp.route("documents", methods=["GET"])
@blp.arguments(s.DocumentQuery, location="query")
@blp.response(200, s.DocumentsOut)
def community_documents(query: dict) -> dict:
    """The current rules of procedure or convention of a community, and every earlier version."""
    current, history = decisions.documents(
        _uow(), require_principal(), str(query["community_id"]), DocumentKind(query["kind"])
    )
    return {"current": current, "history": history}


@blp.route("rules", methods=["GET"])
@blp.arguments(s.CommunityQuery, location="query")
@blp.response(200, s.RulesOut)
def rules_in_force(query: dict) -> dict:
    """The rules of procedure votes are counted under (the platform's defaults when none adopted)."""
    community_id = str(query["community_id"])
    rules, version = decisions.effective_rules(_uow(), require_principal(), community_id)
    return {"community_id": community_id, "version": version, "rules": rules.to_dict()}


@blp.route("types")
class MeetingTypes(MethodView):
    @blp.arguments(s.CommunityQuery, location="query")
    @blp.response(200, s.MeetingTypeOut(many=True))
    def get(self, query: dict) -> list:
        return meetings.meeting_types(_uow(), require_principal(), str(query["community_id"]))

    @blp.arguments(s.MeetingTypeIn)
    @blp.response(201, s.MeetingTypeOut)
    def post(self, body: dict) -> dict:
        return meetings.define_meeting_type(_uow(), require_principal(), plain(body))


@blp.route("candidates", methods=["GET"])
@blp.arguments(s.CommunityQuery, location="query")
@blp.response(200, s.CandidateOut(many=True))
@blp.paginate()
def candidate_items(query: dict, pagination_parameters: Any) -> list:
    """The community's pending issues, offered as agenda items (most supported first)."""
    items, total = candidates.candidates(
        _uow(),
        require_principal(),
        str(query["community_id"]),
        offset=pagination_parameters.first_item,
        limit=pagination_parameters.page_size,
    )
    pagination_parameters.item_count = total
    return items


# --- proposals by residents ------------------------------------------------------------------------------
@blp.route("proposals")
class Proposals(MethodView):
    @blp.arguments(s.ProposalFilter, location="query")
    @blp.response(200, s.ProposalOut(many=True))
    @blp.paginate()
    def get(self, filters: dict, pagination_parameters: Any) -> list:
        """Staff and officials: the proposals of their communities; residents: their own (newest first)."""
        items, total = proposals.list_proposals(
            _uow(),
            require_principal(),
            offset=pagination_parameters.first_item,
            limit=pagination_parameters.page_size,
            **plain(filters),
        )
        pagination_parameters.item_count = total
        return items

    @blp.arguments(s.ProposalIn)
    @blp.response(201, s.ProposalOut)
    def post(self, body: dict) -> Any:
        """A resident proposes a meeting (a bench meeting by default) on a pending issue of their community."""
        return proposals.submit(_uow(), require_principal(), plain(body))


@blp.route("proposals/<uuid:proposal_id>", methods=["GET"])
@blp.response(200, s.ProposalOut)
def get_proposal(proposal_id: uuid.UUID) -> Any:
    return proposals.get(_uow(), require_principal(), str(proposal_id))


@blp.route("proposals/<uuid:proposal_id>/accept", methods=["POST"])
@blp.arguments(s.AcceptProposalIn)
@blp.response(200, s.ProposalOut)
def accept_proposal(body: dict, proposal_id: uuid.UUID) -> Any:
    """Staff schedule the proposed meeting (409 once answered): the issue on the agenda, the proposer invited."""
    return proposals.accept(_uow(), require_principal(), str(proposal_id), plain(body))


@blp.route("proposals/<uuid:proposal_id>/decline", methods=["POST"])
@blp.arguments(s.DeclineProposalIn)
@blp.response(200, s.ProposalOut)
def decline_proposal(body: dict, proposal_id: uuid.UUID) -> Any:
    """Staff decline the proposal with a reason the proposer is told (409 once answered)."""
    return proposals.decline(_uow(), require_principal(), str(proposal_id), body["reason"])


@blp.route("proposals/<uuid:proposal_id>/withdraw", methods=["POST"])
@blp.response(200, s.ProposalOut)
def withdraw_proposal(proposal_id: uuid.UUID) -> Any:
    """The proposer takes a pending proposal back."""
    return proposals.withdraw(_uow(), require_principal(), str(proposal_id))


@blp.route("noticeboard", methods=["GET"])
@blp.arguments(s.NoticeboardQuery, location="query")
@blp.response(200, s.NoticeboardOut)
def community_noticeboard(query: dict) -> Any:
    """The community's noticeboard (公示): decisions with their votes and action items, the action
    items still open, the meetings to come, the convention and rules in force. Public meetings only,
    unless the staff ask for the private ones too. Read without a token, the public board: what
    public meetings decided, a private issue's words withheld (as the public calendar feed)."""
    return noticeboard.noticeboard(
        _uow(),
        current_principal(required=False),
        str(query["community_id"]),
        limit=query["limit"],
        include_private=query["include_private"],
    )


@blp.route("stats", methods=["GET"])
@blp.arguments(s.StatsQuery, location="query")
@blp.response(200, s.StatsOut)
def statistics(query: dict) -> dict:
    """Figures of a community, a street or the city over a period of local dates (default: the 12
    calendar months ending with the current one)."""
    return stats.statistics(_uow(), require_principal(), **plain(query))
