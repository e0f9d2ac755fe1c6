"""Events the meetings service publishes. `issue_ids` name the issues on the agenda (or linked to
the decision), so the issues service can follow its consultations."""

from marshmallow import fields, validate

from linli_kit.events.catalogue import CATALOGUE, EventSchema
from linli_kit.events.contracts._fields import id_list, one_of, text, uuid, when

OUTCOMES = ("adopted", "rejected", "no_quorum")
# What an adopted decision does to its linked issues.
ISSUE_EFFECTS = ("none", "resolution_plan", "resolve", "escalate", "reconsult")
# Who owns an action item. "party_organisation": a party organisation or branch, named by
# owner_organisation_id and owner_organisation_name (added compatibly: every consumer reads the
# one catalogue of the kit).
BODIES = (
    "property_company",
    "owners_committee",
    "community",
    "bureau",
    "party_members",
    "residents",
    "party_organisation",
)


class AgendaItem(EventSchema):
    item_id = uuid()
    title = text(300)
    issue_id = uuid(required=False)


class MeetingSnapshot(EventSchema):
    meeting_id = uuid()
    community_id = uuid()
    meeting_type = text(40)  # bench | pavilion | round_table | a community's own type key
    title = text(300)
    starts_at = when()
    ends_at = when()
    place = text(300, required=False)
    online_url = text(500, required=False)
    convener_id = uuid()
    public = fields.Boolean(load_default=True)
    agenda = fields.List(fields.Nested(AgendaItem), load_default=list)
    issue_ids = id_list()
    participant_ids = id_list()  # invited people and registrants: who to tell
    revision = fields.Integer(required=True, validate=validate.Range(min=1))


class MeetingRescheduled(MeetingSnapshot):
    previous_starts_at = when()
    reason = text(2000, required=False)


class MeetingCancelled(MeetingSnapshot):
    reason = text(2000)


class MeetingConcluded(MeetingSnapshot):
    attendees_count = fields.Integer(required=True, validate=validate.Range(min=0))
    concluded_at = when()


class AgendaItemAdded(EventSchema):
    """An item linked to an issue joined the agenda of an already scheduled meeting."""

    meeting_id = uuid()
    community_id = uuid()
    meeting_type = text(40)
    title = text(300)  # the meeting's title
    starts_at = when()
    item_id = uuid()
    issue_id = uuid()
    item_title = text(300, required=False)  # the agenda item's own title


class ActionItemRef(EventSchema):
    action_item_id = uuid()
    title = text(300)
    owner_body = one_of(*BODIES)
    owner_organisation_id = uuid(required=False)
    owner_organisation_name = text(200, required=False)
    due_date = fields.Date(load_default=None, allow_none=True)


class DecisionRecorded(EventSchema):
    decision_id = uuid()
    meeting_id = uuid()
    community_id = uuid()
    motion = text(2000)
    outcome = one_of(*OUTCOMES)
    rule = text(500)  # the rule of procedure that produced the outcome, in words
    votes_for = fields.Integer(required=True)
    votes_against = fields.Integer(required=True)
    abstentions = fields.Integer(required=True)
    issue_ids = id_list()
    issue_effect = one_of(*ISSUE_EFFECTS)
    resolution_plan = text(4000, required=False)
    action_items = fields.List(fields.Nested(ActionItemRef), load_default=list)
    participant_ids = id_list()


class ActionItemChanged(EventSchema):
    """An action item assigned (or reassigned), updated (status, progress, note) or completed,
    with how far its decision's action items are: once `decision_complete`, the issues linked to
    the decision may move on (the issues service's rules say to what)."""

    action_item_id = uuid()
    decision_id = uuid()
    meeting_id = uuid()
    community_id = uuid()
    issue_id = uuid(required=False)
    title = text(300)
    owner_body = one_of(*BODIES)
    owner_user_id = uuid(required=False)
    owner_organisation_id = uuid(required=False)
    owner_organisation_name = text(200, required=False)
    due_date = fields.Date(load_default=None, allow_none=True)
    status = one_of("open", "in_progress", "done", "cancelled")
    note = text(2000, required=False)
    # Added compatibly (optional): older events lack them.
    issue_ids = id_list()  # the issues linked to the decision
    progress = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(0, 100))  # percent
    decision_issue_effect = one_of(*ISSUE_EFFECTS, required=False)  # what the adopted decision does to them
    decision_action_items = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=0))
    decision_action_items_done = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=0))
    decision_complete = fields.Boolean(load_default=None, allow_none=True)  # all (not cancelled) done


PROPOSAL_STATUSES = ("pending", "accepted", "declined", "withdrawn")


class MeetingProposed(EventSchema):
    """A resident proposed a meeting (a bench meeting by default) on an issue: the community's
    staff are to answer."""

    proposal_id = uuid()
    community_id = uuid()
    issue_id = uuid()
    issue_title = text(200, required=False)
    proposer_id = uuid()
    meeting_type = text(40)
    reason = text(2000)
    status = one_of(*PROPOSAL_STATUSES)


class ProposalAccepted(MeetingProposed):
    """The staff scheduled the proposed meeting: the proposer is told when and where."""

    decided_by = uuid()
    decision_reason = text(2000, required=False)  # a note from the staff
    meeting_id = uuid()
    title = text(300)
    starts_at = when()
    ends_at = when()
    place = text(300, required=False)


class ProposalDeclined(MeetingProposed):
    """The staff declined the proposal: the proposer is told why."""

    decided_by = uuid()
    decision_reason = text(2000)


for _type, _schema in {
    "meetings.meeting.scheduled": MeetingSnapshot,
    "meetings.meeting.rescheduled": MeetingRescheduled,
    "meetings.meeting.cancelled": MeetingCancelled,
    "meetings.meeting.concluded": MeetingConcluded,
    "meetings.agenda_item.added": AgendaItemAdded,
    "meetings.decision.recorded": DecisionRecorded,
    "meetings.action_item.assigned": ActionItemChanged,
    "meetings.action_item.completed": ActionItemChanged,
    "meetings.action_item.updated": ActionItemChanged,
    "meetings.proposal.submitted": MeetingProposed,
    "meetings.proposal.accepted": ProposalAccepted,
    "meetings.proposal.declined": ProposalDeclined,
}.items():
    CATALOGUE.register(_type, 1, _schema)
