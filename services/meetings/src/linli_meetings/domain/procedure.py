"""Rules of procedure (议事规则) and the arithmetic of quorum and threshold. No framework here.

What the rules decide, per meeting type (with a fallback for any other type):
- who may vote: the participant roles counted as voting members;
- the quorum: the fraction of voting members that must be present (present >= fraction x members);
- the default threshold and which other thresholds a single motion may ask for.

How votes are counted (documented here because it changes outcomes at the edges):
- Abstentions count towards the quorum (the member is present) but are not votes cast.
- simple majority: more votes for than against; a tie is rejected.
- two-thirds: votes for >= 2/3 of the votes cast (for + against); exactly two-thirds adopts.
- unanimous: at least one vote for and none against; when `abstention_blocks_unanimity` is true
  (the default) an abstention also prevents unanimity, because a member who abstains has not
  agreed. Communities that treat unanimity as "no objection" set it to false in their rules.
- A motion with no votes cast at all (every present member abstained) is rejected.
Arithmetic uses exact fractions, never floats.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from fractions import Fraction
from typing import Any

from linli_kit.errors import N_, Invalid, Label, Text


class Threshold(StrEnum):
    SIMPLE_MAJORITY = "simple_majority"
    TWO_THIRDS = "two_thirds"
    UNANIMOUS = "unanimous"


class Outcome(StrEnum):
    ADOPTED = "adopted"
    REJECTED = "rejected"
    NO_QUORUM = "no_quorum"


class ParticipantRole(StrEnum):
    RESIDENT_REPRESENTATIVE = "resident_representative"
    PARTY_MEMBER = "party_member"
    # A party organisation or branch taking part as a body (its id and name given with it).
    PARTY_ORGANISATION = "party_organisation"
    PROPERTY_COMPANY = "property_company"
    OWNERS_COMMITTEE = "owners_committee"
    BUREAU = "bureau"
    COMMUNITY_STAFF = "community_staff"
    RESIDENT = "resident"


ALL_ROLES = tuple(ParticipantRole)
# Order of strictness: a motion may only ask for a threshold the rules list as overridable.
_THRESHOLD_WORDS = {
    Threshold.SIMPLE_MAJORITY: N_("a simple majority of votes cast"),
    Threshold.TWO_THIRDS: N_("two-thirds of votes cast"),
}
# Unanimity is worded with how abstentions count under the rules it was decided by.
_UNANIMITY_WORDS = {
    True: N_("unanimity (an abstention prevents it)"),
    False: N_("unanimity (abstentions do not prevent it)"),
}
# A decision's `rule` is stored in English (and travels so in `meetings.decision.recorded`); the
# answer words it in the reader's language from these messages, read back from the stored text by
# `rule_words` (its format is this module's own, so rows stored before are read back the same way).
_QUORUM = N_("quorum {numerator}/{denominator} of {voting_members} voting members ({present} present)")
_NOT_REACHED = N_("{quorum}: not reached")
_COUNTED = N_("{quorum}; {threshold}: {votes_for} for, {votes_against} against, {abstentions} abstaining")
_RULE = re.compile(
    r"^quorum (?P<numerator>\d+)/(?P<denominator>\d+) of (?P<voting_members>\d+) voting members "
    r"\((?P<present>\d+) present\)(?:: not reached|; (?P<threshold>[^:;]+): (?P<votes_for>\d+) for, "
    r"(?P<votes_against>\d+) against, (?P<abstentions>\d+) abstaining)$"
)
_KNOWN_THRESHOLD_WORDS = frozenset(_THRESHOLD_WORDS.values()) | frozenset(_UNANIMITY_WORDS.values())


def parse_fraction(value: str | float | int, *, field_name: str = "quorum") -> Fraction:
    """'1/2', '0.5' or 0.5 -> Fraction(1, 2); must lie in [0, 1]."""
    try:
        fraction = Fraction(str(value)).limit_denominator(1000)
    except (ValueError, ZeroDivisionError) as exc:
        raise Invalid("bad fraction", fields={field_name: [Text("not a fraction: {value!r}", value=value)]}) from exc
    if not 0 <= fraction <= 1:
        raise Invalid("bad fraction", fields={field_name: ["must be between 0 and 1"]})
    return fraction


def _list(value: Any) -> list[Any]:
    """A list from a document's JSON (None: empty); anything else is refused (ValueError)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError("not a list")
    return value


@dataclass(frozen=True)
class MeetingPolicy:
    """How one meeting type votes."""

    voting_roles: tuple[ParticipantRole, ...]
    quorum: Fraction
    threshold: Threshold
    may_override_to: tuple[Threshold, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "voting_roles": [r.value for r in self.voting_roles],
            "quorum": f"{self.quorum.numerator}/{self.quorum.denominator}",
            "threshold": self.threshold.value,
            "may_override_to": [t.value for t in self.may_override_to],
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any], path: str) -> MeetingPolicy:
        problems: dict[str, list[str]] = {}
        try:
            roles = tuple(ParticipantRole(r) for r in _list(raw.get("voting_roles")))
        except ValueError:
            problems[f"{path}.voting_roles"] = [Text("a list of roles among {choices}", choices=", ".join(ALL_ROLES))]
            roles = ()
        if not roles and f"{path}.voting_roles" not in problems:
            problems[f"{path}.voting_roles"] = ["at least one role must vote"]
        try:
            threshold = Threshold(raw.get("threshold", Threshold.SIMPLE_MAJORITY))
        except ValueError:
            problems[f"{path}.threshold"] = [Text("one of {choices}", choices=", ".join(Threshold))]
            threshold = Threshold.SIMPLE_MAJORITY
        try:
            overrides = tuple(Threshold(t) for t in _list(raw.get("may_override_to")))
        except ValueError:
            problems[f"{path}.may_override_to"] = [
                Text("a list of thresholds among {choices}", choices=", ".join(Threshold))
            ]
            overrides = ()
        try:
            quorum = parse_fraction(raw.get("quorum", "1/2"), field_name=f"{path}.quorum")
        except Invalid as exc:
            problems.update(exc.fields)
            quorum = Fraction(1, 2)
        if problems:
            raise Invalid("invalid rules of procedure", fields=problems)
        return cls(voting_roles=roles, quorum=quorum, threshold=threshold, may_override_to=overrides)


@dataclass(frozen=True)
class RulesOfProcedure:
    """A community's rules: a policy per meeting type and one for every other type."""

    default: MeetingPolicy
    by_type: dict[str, MeetingPolicy] = field(default_factory=dict)
    abstention_blocks_unanimity: bool = True

    def policy_for(self, meeting_type: str) -> MeetingPolicy:
        return self.by_type.get(meeting_type, self.default)

    def threshold_for(self, meeting_type: str, requested: Threshold | None) -> Threshold:
        """The threshold a motion votes under; a request outside the rules is refused (422)."""
        policy = self.policy_for(meeting_type)
        if requested is None or requested == policy.threshold:
            return policy.threshold
        if requested not in policy.may_override_to:
            allowed = [policy.threshold.value, *(t.value for t in policy.may_override_to)]
            raise Invalid(
                "the rules of procedure do not allow this threshold",
                fields={
                    "threshold": [
                        Text(
                            "{meeting_type} meetings allow only: {thresholds}",
                            meeting_type=Label("meeting_type", meeting_type),
                            thresholds=", ".join(allowed),
                        )
                    ]
                },
            )
        return requested

    def to_dict(self) -> dict[str, Any]:
        return {
            "default": self.default.to_dict(),
            "meeting_types": {k: v.to_dict() for k, v in self.by_type.items()},
            "abstention_blocks_unanimity": self.abstention_blocks_unanimity,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> RulesOfProcedure:
        if not isinstance(raw, dict) or not isinstance(raw.get("default"), dict):
            raise Invalid("invalid rules of procedure", fields={"rules.default": ["a default policy is required"]})
        types = raw.get("meeting_types") or {}
        if not isinstance(types, dict):
            raise Invalid("invalid rules of procedure", fields={"rules.meeting_types": ["must be an object"]})
        problems: dict[str, list[str]] = {}
        policies: dict[str, MeetingPolicy] = {}
        default = None
        for key, value in [("default", raw["default"]), *types.items()]:
            path = "rules.default" if key == "default" else f"rules.meeting_types.{key}"
            try:
                if not isinstance(value, dict):
                    raise Invalid("bad policy", fields={path: ["must be an object"]})
                policy = MeetingPolicy.from_dict(value, path)
            except Invalid as exc:
                problems.update(exc.fields)
                continue
            if key == "default":
                default = policy
            else:
                policies[key] = policy
        blocks = raw.get("abstention_blocks_unanimity", True)
        if blocks not in (True, False):  # 0 and 1 too, as documents adopted earlier may hold them
            problems["rules.abstention_blocks_unanimity"] = ["true or false"]
        if problems or default is None:
            raise Invalid("invalid rules of procedure", fields=problems)
        return cls(default=default, by_type=policies, abstention_blocks_unanimity=bool(blocks))


# Used when a community has adopted no rules of its own. Informal meetings let everyone present
# vote by simple majority; the round table, where bodies commit to work, needs two-thirds of its
# voting members present and two-thirds of votes cast; a bureau attends in an advisory capacity,
# and so does a party organisation taking part as a body (its members vote as party members).
DEFAULT_RULES = RulesOfProcedure(
    default=MeetingPolicy(
        voting_roles=ALL_ROLES,
        quorum=Fraction(1, 2),
        threshold=Threshold.SIMPLE_MAJORITY,
        may_override_to=(Threshold.TWO_THIRDS, Threshold.UNANIMOUS),
    ),
    by_type={
        "round_table": MeetingPolicy(
            voting_roles=(
                ParticipantRole.RESIDENT_REPRESENTATIVE,
                ParticipantRole.PARTY_MEMBER,
                ParticipantRole.PROPERTY_COMPANY,
                ParticipantRole.OWNERS_COMMITTEE,
                ParticipantRole.COMMUNITY_STAFF,
            ),
            quorum=Fraction(2, 3),
            threshold=Threshold.TWO_THIRDS,
            may_override_to=(Threshold.UNANIMOUS,),
        )
    },
)


@dataclass(frozen=True)
class Count:
    votes_for: int
    votes_against: int
    abstentions: int

    def __post_init__(self) -> None:
        if min(self.votes_for, self.votes_against, self.abstentions) < 0:
            raise Invalid("negative tally", fields={"tally": ["counts cannot be negative"]})

    @property
    def cast(self) -> int:
        return self.votes_for + self.votes_against

    @property
    def voters(self) -> int:
        return self.cast + self.abstentions


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    rule: str


def decide(
    count: Count,
    *,
    voting_members: int,
    present_voting_members: int,
    quorum: Fraction,
    threshold: Threshold,
    abstention_blocks_unanimity: bool = True,
) -> Result:
    """The outcome of a vote and the rule that produced it, in words."""
    if count.voters > present_voting_members:
        raise Invalid(
            "more votes than voting members present",
            fields={
                "tally": [
                    Text(
                        "{voters} votes but {present_voting_members} voting members present",
                        voters=count.voters,
                        present_voting_members=present_voting_members,
                    )
                ]
            },
        )
    needed_present = quorum * voting_members
    quorum_words = Text(
        _QUORUM,
        numerator=quorum.numerator,
        denominator=quorum.denominator,
        voting_members=voting_members,
        present=present_voting_members,
    )
    if voting_members == 0 or present_voting_members < needed_present:
        return Result(Outcome.NO_QUORUM, str(Text(_NOT_REACHED, quorum=quorum_words)))
    if threshold == Threshold.UNANIMOUS:
        threshold_words = _UNANIMITY_WORDS[abstention_blocks_unanimity]
    else:
        threshold_words = _THRESHOLD_WORDS[threshold]
    rule = str(
        Text(
            _COUNTED,
            quorum=quorum_words,
            threshold=Text(threshold_words),
            votes_for=count.votes_for,
            votes_against=count.votes_against,
            abstentions=count.abstentions,
        )
    )
    return Result(_passes(count, threshold, abstention_blocks_unanimity), rule)


def rule_words(rule: str) -> Text | None:
    """The message a decision's stored `rule` was worded from, with its values (None: a text this
    module did not write, to be shown as it is)."""
    found = _RULE.match(rule)
    if found is None:
        return None
    values = found.groupdict()
    quorum = Text(
        _QUORUM,
        numerator=int(values["numerator"]),
        denominator=int(values["denominator"]),
        voting_members=int(values["voting_members"]),
        present=int(values["present"]),
    )
    if values["threshold"] is None:
        return Text(_NOT_REACHED, quorum=quorum)
    if values["threshold"] not in _KNOWN_THRESHOLD_WORDS:
        return None
    return Text(
        _COUNTED,
        quorum=quorum,
        threshold=Text(values["threshold"]),
        votes_for=int(values["votes_for"]),
        votes_against=int(values["votes_against"]),
        abstentions=int(values["abstentions"]),
    )


def _passes(count: Count, threshold: Threshold, abstention_blocks_unanimity: bool) -> Outcome:
    if count.cast == 0:
        return Outcome.REJECTED
    if threshold == Threshold.SIMPLE_MAJORITY:
        adopted = count.votes_for > count.votes_against
    elif threshold == Threshold.TWO_THIRDS:
        adopted = 3 * count.votes_for >= 2 * count.cast
    else:
        adopted = count.votes_against == 0 and not (abstention_blocks_unanimity and count.abstentions > 0)
    return Outcome.ADOPTED if adopted else Outcome.REJECTED
