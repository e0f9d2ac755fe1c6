"""The words people read for the platform's codes, in English; their Chinese is in the kit's catalogue
(context: the kind). The codes themselves are the API's contract and never change; these are what a
display label (`status_label`, a category's `label`, an export's column header) shows.
`linli_kit.i18n.label(kind, code)` gives them in the reader's language."""

from __future__ import annotations

from linli_kit.errors import NC_

LABELS: dict[str, dict[str, str]] = {
    "issue_status": {
        "reported": NC_("issue_status", "Reported"),
        "accepted": NC_("issue_status", "Accepted"),
        "rejected": NC_("issue_status", "Not accepted"),
        "duplicate": NC_("issue_status", "Duplicate"),
        "deliberating": NC_("issue_status", "Being discussed"),
        "resolving": NC_("issue_status", "Being fixed"),
        "resolved": NC_("issue_status", "Resolved"),
        "closed": NC_("issue_status", "Closed"),
    },
    # The categories the platform starts with (the city may add its own, shown by their name).
    "issue_category": {
        "safety_hazard": NC_("issue_category", "Safety hazard"),
        "repairs_facilities": NC_("issue_category", "Repairs and facilities"),
        "environment_sanitation": NC_("issue_category", "Environment and sanitation"),
        "property_management": NC_("issue_category", "Property management"),
        "parking": NC_("issue_category", "Parking"),
        "neighbour_dispute": NC_("issue_category", "Neighbour dispute"),
        "elderly_vulnerable_support": NC_("issue_category", "Elderly and vulnerable support"),
        "other": NC_("issue_category", "Other"),
    },
    "urgency": {
        "low": NC_("urgency", "Low"),
        "normal": NC_("urgency", "Normal"),
        "high": NC_("urgency", "High"),
        "urgent": NC_("urgency", "Urgent"),
    },
    "tier": {
        "compound": NC_("tier", "Compound"),
        "community": NC_("tier", "Community"),
        "street": NC_("tier", "Street"),
        "city": NC_("tier", "City"),
    },
    "meeting_type": {
        "bench": NC_("meeting_type", "Bench meeting"),
        "pavilion": NC_("meeting_type", "Pavilion meeting"),
        "round_table": NC_("meeting_type", "Round-table meeting"),
    },
    "meeting_status": {
        "scheduled": NC_("meeting_status", "Scheduled"),
        "in_progress": NC_("meeting_status", "In progress"),
        "concluded": NC_("meeting_status", "Held"),
        "cancelled": NC_("meeting_status", "Cancelled"),
    },
    "action_item_status": {
        "open": NC_("action_item_status", "To do"),
        "in_progress": NC_("action_item_status", "Under way"),
        "done": NC_("action_item_status", "Done"),
        "cancelled": NC_("action_item_status", "Cancelled"),
    },
    "proposal_status": {
        "pending": NC_("proposal_status", "Waiting for an answer"),
        "accepted": NC_("proposal_status", "Accepted"),
        "declined": NC_("proposal_status", "Declined"),
        "withdrawn": NC_("proposal_status", "Withdrawn"),
    },
    "activity_status": {
        "draft": NC_("activity_status", "Draft"),
        "published": NC_("activity_status", "Published"),
        "cancelled": NC_("activity_status", "Cancelled"),
    },
    "series_status": {
        "draft": NC_("series_status", "Draft"),
        "active": NC_("series_status", "Running"),
        "cancelled": NC_("series_status", "Cancelled"),
    },
    "registration_status": {
        "confirmed": NC_("registration_status", "Place confirmed"),
        "waitlisted": NC_("registration_status", "On the waiting list"),
        "cancelled": NC_("registration_status", "Cancelled"),
        "checked_in": NC_("registration_status", "Checked in"),
    },
    "booking_status": {
        "requested": NC_("booking_status", "Requested"),
        "confirmed": NC_("booking_status", "Confirmed"),
        "completed": NC_("booking_status", "Done"),
        "cancelled": NC_("booking_status", "Cancelled"),
    },
    "match_status": {
        "proposed": NC_("match_status", "Asked"),
        "accepted": NC_("match_status", "Accepted"),
        "declined": NC_("match_status", "Declined"),
    },
}
