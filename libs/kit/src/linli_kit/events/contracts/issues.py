"""Events the issues service publishes. Every one carries a snapshot of the issue as it is after
the change, with its `revision`, so a consumer can ignore a late, older one."""

from marshmallow import fields, validate

from linli_kit.events.catalogue import CATALOGUE, EventSchema
from linli_kit.events.contracts._fields import one_of, text, uuid, when

STATUSES = ("reported", "accepted", "rejected", "duplicate", "deliberating", "resolving", "resolved", "closed")
TIERS = ("compound", "community", "street", "city")
URGENCIES = ("low", "normal", "high", "urgent")
BODIES = ("property_company", "owners_committee", "community", "bureau")
# Who may read an issue (DESIGN section 4, publication): `public` anyone, Open311 included;
# `community` the people of its community and the staff above it; `private` only its reporter,
# its supporters and the staff who handle it (anonymous reports, vulnerable people, staff-marked).
VISIBILITIES = ("public", "community", "private")


class IssueSnapshot(EventSchema):
    issue_id = uuid()
    community_id = uuid()
    compound_id = uuid(required=False)
    title = text(200)
    category = text(80)
    urgency = one_of(*URGENCIES)
    status = one_of(*STATUSES)
    tier = one_of(*TIERS)
    reporter_id = uuid()
    assignee_type = one_of(*BODIES, required=False)
    assignee_id = uuid(required=False)
    supporter_count = fields.Integer(load_default=0)
    due_at = when(required=False)
    actor_id = uuid(required=False)  # who made this change; null for the system (timers, events)
    # Added (optional): meetings held on the issue, and the residents who support it, so that
    # consumers can tell the supporters of progress without asking the issues service.
    consultation_count = fields.Integer(load_default=0)
    supporter_ids = fields.List(fields.UUID(), load_default=list)
    # Added (optional): who may read it, so consumers tell only those who may (default as before).
    visibility = fields.String(load_default="community", validate=validate.OneOf(VISIBILITIES))
    revision = fields.Integer(required=True, validate=validate.Range(min=1))


class IssueReported(IssueSnapshot):
    anonymous = fields.Boolean(load_default=False)
    channel = text(20, required=False)  # app | phone | doorstep | open311 (added, optional)


class IssueStatusChanged(IssueSnapshot):
    from_status = one_of(*STATUSES)
    reason = text(2000, required=False)


class IssueAssigned(IssueSnapshot):
    pass


class IssueEscalated(IssueSnapshot):
    from_tier = one_of(*TIERS)
    reason = text(2000, required=False)
    automatic = fields.Boolean(load_default=False)


class IssueResolved(IssueSnapshot):
    from_status = one_of(*STATUSES, required=False)  # added (optional): the status it left
    summary = text(4000, required=False)


class IssueClosed(IssueSnapshot):
    from_status = one_of(*STATUSES, required=False)  # added (optional): the status it left
    rating = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(1, 5))


class IssueReopened(IssueSnapshot):
    from_status = one_of(*STATUSES, required=False)  # added (optional): the status it left
    reason = text(2000, required=False)


class IssueOverdue(IssueSnapshot):
    pass


class IssueSupported(IssueSnapshot):
    supporter_id = uuid()


class IssueAssignmentAccepted(IssueSnapshot):
    """The organisation the issue is assigned to took it on (`assignee_*` name it), with the public
    note it gave. Added (new type): older consumers do not bind it."""

    note = text(2000, required=False)


class IssueVisibilityChanged(IssueSnapshot):
    """Who may read the issue changed (its `visibility` is the new one): staff marked it private or
    lifted their mark, or the city narrowed its category's publication. Consumers that keep what
    an issue's readers may see (notifications) apply it at once. Added (new type): older consumers
    do not bind it."""

    from_visibility = fields.String(required=True, validate=validate.OneOf(VISIBILITIES))
    cause = one_of("marked_private", "unmarked_private", "category_narrowed")
    reason = text(2000, required=False)


for _type, _schema in {
    "issues.issue.reported": IssueReported,
    "issues.issue.accepted": IssueStatusChanged,
    "issues.issue.assigned": IssueAssigned,
    "issues.issue.assignment_accepted": IssueAssignmentAccepted,
    "issues.issue.status_changed": IssueStatusChanged,
    "issues.issue.escalated": IssueEscalated,
    "issues.issue.resolved": IssueResolved,
    "issues.issue.closed": IssueClosed,
    "issues.issue.reopened": IssueReopened,
    "issues.issue.overdue": IssueOverdue,
    "issues.issue.supported": IssueSupported,
    "issues.issue.visibility_changed": IssueVisibilityChanged,
}.items():
    CATALOGUE.register(_type, 1, _schema)
