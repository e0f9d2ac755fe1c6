"""Quorum and threshold arithmetic at the edges (domain only, no database)."""

from fractions import Fraction

import pytest

from linli_kit.errors import Invalid
from linli_meetings.domain.procedure import (
    DEFAULT_RULES,
    Count,
    Outcome,
    RulesOfProcedure,
    Threshold,
    decide,
    parse_fraction,
    rule_words,
)


def outcome(f, a, ab, *, members=10, present=10, quorum="1/2", threshold=Threshold.SIMPLE_MAJORITY, blocks=True):
    return decide(
        Count(f, a, ab),
        voting_members=members,
        present_voting_members=present,
        quorum=Fraction(quorum),
        threshold=threshold,
        abstention_blocks_unanimity=blocks,
    ).outcome


@pytest.mark.parametrize(
    ("members", "present", "quorum", "expected"),
    [
        (10, 5, "1/2", Outcome.ADOPTED),  # exactly half present meets a half quorum
        (10, 4, "1/2", Outcome.NO_QUORUM),
        (9, 6, "2/3", Outcome.ADOPTED),  # exactly two-thirds present
        (9, 5, "2/3", Outcome.NO_QUORUM),
        (7, 5, "2/3", Outcome.ADOPTED),  # 5 >= 14/3
        (7, 4, "2/3", Outcome.NO_QUORUM),
        (0, 0, "1/2", Outcome.NO_QUORUM),  # nobody may vote: no quorum, not a division by zero
    ],
)
def test_quorum_edges(members, present, quorum, expected):
    assert outcome(min(present, 1), 0, 0, members=members, present=present, quorum=quorum) == expected


def test_zero_quorum_still_needs_a_voting_member():
    assert outcome(1, 0, 0, members=3, present=1, quorum="0") == Outcome.ADOPTED


@pytest.mark.parametrize(
    ("f", "a", "ab", "expected"),
    [
        (4, 2, 0, Outcome.ADOPTED),  # exactly two-thirds of votes cast
        (6, 3, 1, Outcome.ADOPTED),  # abstention does not count as a vote cast
        (5, 3, 0, Outcome.REJECTED),  # 5/8 < 2/3
        (2, 1, 7, Outcome.ADOPTED),
        (0, 0, 10, Outcome.REJECTED),  # nothing cast
    ],
)
def test_two_thirds_edges(f, a, ab, expected):
    assert outcome(f, a, ab, threshold=Threshold.TWO_THIRDS) == expected


@pytest.mark.parametrize(
    ("f", "a", "ab", "expected"),
    [
        (5, 5, 0, Outcome.REJECTED),  # a tie is not a majority
        (5, 4, 1, Outcome.ADOPTED),
        (3, 3, 4, Outcome.REJECTED),
        (1, 0, 9, Outcome.ADOPTED),  # abstentions do not count against
    ],
)
def test_simple_majority_ties(f, a, ab, expected):
    assert outcome(f, a, ab) == expected


def test_unanimity_with_an_abstention_under_the_default_definition():
    assert outcome(9, 0, 1, threshold=Threshold.UNANIMOUS) == Outcome.REJECTED
    assert outcome(10, 0, 0, threshold=Threshold.UNANIMOUS) == Outcome.ADOPTED
    assert outcome(9, 1, 0, threshold=Threshold.UNANIMOUS) == Outcome.REJECTED


def test_unanimity_as_no_objection_when_the_rules_say_so():
    assert outcome(9, 0, 1, threshold=Threshold.UNANIMOUS, blocks=False) == Outcome.ADOPTED
    assert outcome(0, 0, 10, threshold=Threshold.UNANIMOUS, blocks=False) == Outcome.REJECTED
    assert outcome(9, 1, 0, threshold=Threshold.UNANIMOUS, blocks=False) == Outcome.REJECTED


def test_the_rule_is_stated_in_words():
    result = decide(
        Count(4, 2, 1),
        voting_members=9,
        present_voting_members=7,
        quorum=Fraction(2, 3),
        threshold=Threshold.TWO_THIRDS,
    )
    assert result.outcome == Outcome.ADOPTED
    assert "quorum 2/3 of 9 voting members (7 present)" in result.rule
    assert "two-thirds of votes cast: 4 for, 2 against, 1 abstaining" in result.rule


@pytest.mark.parametrize(
    ("threshold", "blocks", "present", "words"),
    [
        (Threshold.SIMPLE_MAJORITY, True, 7, "a simple majority of votes cast"),
        (Threshold.TWO_THIRDS, True, 7, "two-thirds of votes cast"),
        (Threshold.UNANIMOUS, True, 7, "unanimity (an abstention prevents it)"),
        (Threshold.UNANIMOUS, False, 7, "unanimity (abstentions do not prevent it)"),
        (Threshold.SIMPLE_MAJORITY, True, 4, None),  # 4 of 9 < 1/2: no quorum
    ],
)
def test_the_stored_rule_is_read_back_as_its_message(threshold, blocks, present, words):
    """The answer words a stored rule in the reader's language from the message it was made of."""
    rule = decide(
        Count(3, 1, 0),
        voting_members=9,
        present_voting_members=present,
        quorum=Fraction(1, 2),
        threshold=threshold,
        abstention_blocks_unanimity=blocks,
    ).rule
    message = rule_words(rule)
    assert message is not None and str(message) == rule
    quorum = message.params["quorum"]
    assert quorum.params == {"numerator": 1, "denominator": 2, "voting_members": 9, "present": present}
    if words is None:
        assert message.template == "{quorum}: not reached"
    else:
        assert message.params["threshold"].template == words
        assert (message.params["votes_for"], message.params["votes_against"], message.params["abstentions"]) == (
            3,
            1,
            0,
        )


def test_a_rule_not_worded_here_is_left_as_it_is():
    assert rule_words("a majority of those present") is None
    assert (
        rule_words("quorum 1/2 of 9 voting members (7 present); by acclamation: 3 for, 1 against, 0 abstaining") is None
    )


def test_more_votes_than_members_present_is_refused():
    with pytest.raises(Invalid) as err:
        outcome(5, 3, 0, present=7)
    assert "tally" in err.value.fields
    with pytest.raises(Invalid):
        Count(-1, 0, 0)


def test_default_rules_per_meeting_type():
    assert DEFAULT_RULES.policy_for("round_table").threshold == Threshold.TWO_THIRDS
    assert "bureau" not in {r.value for r in DEFAULT_RULES.policy_for("round_table").voting_roles}
    assert DEFAULT_RULES.policy_for("bench").threshold == Threshold.SIMPLE_MAJORITY
    assert DEFAULT_RULES.policy_for("a_community_type") is DEFAULT_RULES.default


def test_overriding_the_threshold_only_as_the_rules_allow():
    assert DEFAULT_RULES.threshold_for("round_table", Threshold.UNANIMOUS) == Threshold.UNANIMOUS
    assert DEFAULT_RULES.threshold_for("round_table", None) == Threshold.TWO_THIRDS
    with pytest.raises(Invalid) as err:
        DEFAULT_RULES.threshold_for("round_table", Threshold.SIMPLE_MAJORITY)
    assert "threshold" in err.value.fields


def test_rules_round_trip_and_bad_rules_name_their_fields():
    again = RulesOfProcedure.from_dict(DEFAULT_RULES.to_dict())
    assert again == DEFAULT_RULES
    with pytest.raises(Invalid) as err:
        RulesOfProcedure.from_dict(
            {
                "default": {"voting_roles": ["resident"], "quorum": "3/2", "threshold": "simple_majority"},
                "meeting_types": {"bench": {"voting_roles": ["king"], "threshold": "most"}},
            }
        )
    assert set(err.value.fields) >= {
        "rules.default.quorum",
        "rules.meeting_types.bench.voting_roles",
        "rules.meeting_types.bench.threshold",
    }


def test_fractions_parse_exactly():
    assert parse_fraction("2/3") == Fraction(2, 3)
    assert parse_fraction("0.5") == Fraction(1, 2)
    with pytest.raises(Invalid):
        parse_fraction("half")
