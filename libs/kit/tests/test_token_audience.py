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


def test_a_verified_token_is_remembered_but_still_refused_once_it_expires(signer, token_keys, monkeypatch):
    """A verifier remembers tokens that passed (a caller sends the same one with every request);
    the memory never outlives the token, and a token that failed is checked again each time."""
    from datetime import datetime, timedelta

    import linli_kit.auth as auth

    checks = []
    check = TokenVerifier._check

    def counted(self, token):
        checks.append(token)
        return check(self, token)

    monkeypatch.setattr(TokenVerifier, "_check", counted)
    issues = verifier(token_keys, "issues")
    token = signer.sign(user_id="u1", role="resident", community_ids=["c"], ttl=timedelta(minutes=5))
    first, second = issues.verify(token), issues.verify(token)
    assert first == second and first.expires_at is not None and len(checks) == 1
    # The same token for another service is refused there, remembered or not.
    with pytest.raises(Unauthorized, match="not meant for meetings"):
        verifier(token_keys, "meetings").verify(signer.sign(user_id="u1", role="resident", audience="issues"))
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    for _ in range(2):
        with pytest.raises(Unauthorized):
            issues.verify(tampered)
    assert checks.count(tampered) == 2

    class Later(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime.now(tz) + timedelta(minutes=6)

    monkeypatch.setattr(auth, "datetime", Later)
    with pytest.raises(Unauthorized, match="token expired"):
        issues.verify(token)
    # And forgotten: the next call checks it in full again (here on the real clock, where it is valid).
    monkeypatch.setattr(auth, "datetime", datetime)
    assert issues.verify(token) == first and checks.count(token) == 2
