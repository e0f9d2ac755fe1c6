"""A token made for one service is refused by another; tokens naming no audience work as before."""

from __future__ import annotations

import pytest

from linli_kit.auth import TokenSigner, TokenVerifier
from linli_kit.errors import Unauthorized


@pytest.fixture
def signer(token_keys) -> TokenSigner:
    return TokenSigner(token_keys[0], issuer="linli-gateway")


def verifier(token_keys, audience: str | None) -> TokenVerifier:
    return TokenVerifier(token_keys[1], issuer="linli-gateway", audience=audience)


def test_a_token_for_one_service_is_refused_by_another(signer, token_keys):
    for_issues = signer.sign(user_id="u1", role="resident", community_ids=["c"], audience="issues")
    principal = verifier(token_keys, "issues").verify(for_issues)
    assert principal.user_id == "u1" and "aud" not in principal.extra
    with pytest.raises(Unauthorized, match="not meant for meetings"):
        verifier(token_keys, "meetings").verify(for_issues)
    both = signer.sign(user_id="u1", role="resident", audience=["issues", "meetings"])
    assert verifier(token_keys, "meetings").verify(both).user_id == "u1"


def test_tokens_without_an_audience_and_verifiers_without_one_work_as_before(signer, token_keys):
    plain = signer.sign(user_id="u1", role="resident")
    assert verifier(token_keys, "issues").verify(plain).user_id == "u1"
    assert (
        verifier(token_keys, None).verify(signer.sign(user_id="u2", role="resident", audience="issues")).user_id == "u2"
    )
