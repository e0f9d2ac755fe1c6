"""Events the activities service publishes. Events about people carry their user ids (never phone
numbers): the notifications service looks up how to reach them."""

from marshmallow import fields, validate

from linli_kit.events.catalogue import CATALOGUE, EventSchema
from linli_kit.events.contracts._fields import id_list, one_of, text, uuid, when

KINDS = ("festival", "sports", "culture", "volunteering", "education", "service_day", "other")


class ActivitySnapshot(EventSchema):
    activity_id = uuid()
    community_ids = fields.List(fields.UUID(), required=True, validate=validate.Length(min=1))
    kind = one_of(*KINDS)
    title = text(300)
    starts_at = when()
    ends_at = when()
    place = text(300, required=False)
    capacity = fields.Integer(load_default=None, allow_none=True)
    organiser_id = uuid()
    registrant_ids = id_list()  # confirmed and waiting: who to tell of a change
    revision = fields.Integer(required=True, validate=validate.Range(min=1))
    # Added (compatible, optional): an occurrence's series, the festival the activity is part of.
    series_id = uuid(required=False)
    festival_id = uuid(required=False)


class ActivityCancelled(ActivitySnapshot):
    reason = text(2000)


class ActivityRescheduled(ActivitySnapshot):
    previous_starts_at = when()


class ActivityReminder(ActivitySnapshot):
    """Sent by the activities worker a set time before the start (ACTIVITIES_REMINDER_MINUTES, by
    default a day and an hour before), once per lead time and start; none after a cancellation or
    for a start that has moved."""

    lead_minutes = fields.Integer(required=True, validate=validate.Range(min=1))
    confirmed_ids = id_list()  # who holds a place now (confirmed or checked in): who to remind


class RegistrationChanged(EventSchema):
    registration_id = uuid()
    activity_id = uuid()
    community_id = uuid()
    user_id = uuid()
    title = text(300)  # the activity's, so a message needs no lookup
    starts_at = when()
    party_size = fields.Integer(required=True, validate=validate.Range(min=1))
    status = one_of("confirmed", "waitlisted", "cancelled", "checked_in")
    waitlist_position = fields.Integer(load_default=None, allow_none=True)


class CheckinRecorded(EventSchema):
    registration_id = uuid(required=False)  # null for walk-ins
    activity_id = uuid()
    community_id = uuid()
    user_id = uuid(required=False)
    participants = fields.Integer(required=True, validate=validate.Range(min=1))
    checked_in_at = when()


class BookingChanged(EventSchema):
    booking_id = uuid()
    offering_id = uuid()
    service_name = text(200)
    community_id = uuid()
    resident_id = uuid()
    booked_by_id = uuid()
    provider_id = uuid(required=False)
    slot_start = when()
    slot_end = when()
    door_to_door = fields.Boolean(required=True)
    status = one_of("requested", "confirmed", "completed", "cancelled")


class TalentVetted(EventSchema):
    """Staff judged a talent-pool entry: the talent (user_id) is told; residents see it once approved."""

    talent_id = uuid()
    user_id = uuid()
    community_id = uuid()
    display_name = text(200)
    status = one_of("approved", "declined")
    vetted_by_id = uuid()


class TalentMatchChanged(EventSchema):
    """A talent asked to help with a need (`matched`: tell talent_user_id), and their answer
    (`match_accepted` / `match_declined`: tell matched_by_id)."""

    match_id = uuid()
    talent_id = uuid()
    talent_user_id = uuid()
    community_id = uuid()
    issue_id = uuid(required=False)
    booking_id = uuid(required=False)
    matched_by_id = uuid()
    status = one_of("proposed", "accepted", "declined")
    note = text(2000, required=False)
    decline_reason = text(2000, required=False)


PROPOSAL_STATUSES = ("pending", "accepted", "declined", "withdrawn")


class ActivityProposed(EventSchema):
    """A resident proposed an activity for their community: its staff are to answer (`submitted`);
    the staff accepted it, making the activity (`accepted`: activity_id, starts_at), or declined it
    with a reason (`declined`): the proposer is told."""

    proposal_id = uuid()
    community_id = uuid()
    proposer_id = uuid()
    kind = one_of(*KINDS)
    title = text(300)
    reason = text(2000, required=False)  # why the proposer thinks it worth doing
    status = one_of(*PROPOSAL_STATUSES)
    decided_by = uuid(required=False)
    decision_reason = text(2000, required=False)
    activity_id = uuid(required=False)
    starts_at = when(required=False)


URGENCIES = ("low", "normal", "high", "urgent")


class VisitConcernRaised(EventSchema):
    """On a welfare visit, the visitor raised a problem of the resident's as an issue: the issues
    service reports it with this `issue_id` (so the visit names it at once), channel `doorstep`,
    for the resident (`resident_id`, when the resident has an account) or else in the visitor's
    name, taken by `raised_by`. Its category is the issues service's (unknown or retired:
    `elderly_vulnerable_support`)."""

    visit_id = uuid()
    issue_id = uuid()
    flag_id = uuid()
    community_id = uuid()
    resident_id = uuid(required=False)
    raised_by = uuid()
    title = text(200)
    description = text(4000)
    category = text(80)
    urgency = one_of(*URGENCIES)
    address = text(500, required=False)


class PatrolFindingRaised(EventSchema):
    """A mutual-aid group's patrol found something (a loose manhole cover, a blocked fire lane) and
    a member raised it as an issue: the issues service reports it with this `issue_id` (so the
    finding names it at once), channel `doorstep`, in the name of `raised_by`, the group
    (`group_id`, `group_name`) credited on the issue. `address` is the public place it was found.
    Its category is the issues service's (unknown or retired: `other`)."""

    finding_id = uuid()
    round_id = uuid()
    issue_id = uuid()
    community_id = uuid()
    group_id = uuid()
    group_name = text(200)
    raised_by = uuid()
    title = text(200)
    description = text(4000)
    category = text(80)
    urgency = one_of(*URGENCIES)
    address = text(500, required=False)


for _type, _schema in {
    "activities.activity.published": ActivitySnapshot,
    "activities.activity.cancelled": ActivityCancelled,
    "activities.activity.rescheduled": ActivityRescheduled,
    # Added (compatible, a new type): the registrants holding a place are reminded before the start.
    "activities.activity.reminder": ActivityReminder,
    "activities.registration.confirmed": RegistrationChanged,
    "activities.registration.waitlisted": RegistrationChanged,
    "activities.registration.promoted": RegistrationChanged,
    "activities.registration.cancelled": RegistrationChanged,
    "activities.checkin.recorded": CheckinRecorded,
    "activities.booking.requested": BookingChanged,
    "activities.booking.confirmed": BookingChanged,
    "activities.booking.completed": BookingChanged,
    # Added (compatible): a resident or staff cancels a booking; the provider must know.
    "activities.booking.cancelled": BookingChanged,
    # Added (compatible, new types): the talent pool's vetting and matching.
    "activities.talent.vetted": TalentVetted,
    "activities.talent.matched": TalentMatchChanged,
    "activities.talent.match_accepted": TalentMatchChanged,
    "activities.talent.match_declined": TalentMatchChanged,
    # Added (new types): residents start things; staff accept (an activity made) or decline.
    "activities.proposal.submitted": ActivityProposed,
    "activities.proposal.accepted": ActivityProposed,
    "activities.proposal.declined": ActivityProposed,
    # Added (new type): a welfare visit raises an issue on the spot; the issues service reports it.
    "activities.visit.concern_raised": VisitConcernRaised,
    # Added (new type): a patrol's finding becomes an issue credited to the group; issues reports it.
    "activities.patrol.finding_raised": PatrolFindingRaised,
}.items():
    CATALOGUE.register(_type, 1, _schema)
