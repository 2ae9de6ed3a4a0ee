"""The bank's tokens: what a verified token says is kept, its times are checked at every use."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from creditfactory.clock import FixedClock
from creditfactory.errors import Unauthenticated
from creditfactory.security import bank_tokens
from creditfactory.security.bank_tokens import BankTokenConfig, BankTokenVerifier

SECRET = "a-shared-secret-of-the-mobile-bank-0123456789-0123456789-abcdefgh"
NOW = datetime(2025, 7, 1, 2, 0, tzinfo=UTC)


def token(cif: str = "C0001", secret: str = SECRET, **extra: Any) -> str:
    claims: dict[str, Any] = {
        "sub": f"mb-{cif}",
        "cif": cif,
        "exp": int((NOW + timedelta(minutes=10)).timestamp()),
    }
    claims.update(extra)
    return jwt.encode(claims, secret, algorithm="HS256")


@pytest.fixture
def decoded(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The tokens PyJWT decodes (their signature checked) from now on."""
    seen: list[str] = []
    decode = jwt.decode

    def counted(t: str, *args: Any, **kwargs: Any) -> Any:
        seen.append(t)
        return decode(t, *args, **kwargs)

    monkeypatch.setattr(bank_tokens.jwt, "decode", counted)
    return seen


def verifier(clock: FixedClock) -> BankTokenVerifier:
    return BankTokenVerifier(BankTokenConfig(algorithm="HS256", key=SECRET, customer_claim="cif"), clock)


def test_a_token_used_again_is_not_decoded_again_but_its_expiry_still_holds(decoded: list[str]) -> None:
    clock = FixedClock(NOW)
    v = verifier(clock)
    t = token()
    first = v.verify(t)
    assert first.customer_id == "C0001" and first.id == "bank:mb-C0001"
    assert v.verify(t) == first
    assert decoded == [t]
    clock.advance(minutes=10, seconds=31)  # past the expiry and the 30 s leeway
    with pytest.raises(Unauthenticated, match="expired"):
        v.verify(t)
    assert decoded == [t]


def test_a_token_not_valid_yet_becomes_valid_when_its_time_comes(decoded: list[str]) -> None:
    clock = FixedClock(NOW)
    v = verifier(clock)
    t = token(nbf=int((NOW + timedelta(minutes=2)).timestamp()))
    with pytest.raises(Unauthenticated, match="not valid yet"):
        v.verify(t)
    clock.advance(minutes=2)
    assert v.verify(t).customer_id == "C0001"
    assert decoded == [t]  # its signature was checked once


def test_a_refused_token_is_checked_in_full_every_time(decoded: list[str]) -> None:
    v = verifier(FixedClock(NOW))
    good = token()
    v.verify(good)
    forged = token(secret=SECRET + "x")  # the same claims, another key
    for _ in range(2):
        with pytest.raises(Unauthenticated, match="signature"):
            v.verify(forged)
    with pytest.raises(Unauthenticated, match="invalid"):
        v.verify(good[:-2])  # the signature cut short
    assert decoded == [good, forged, forged, good[:-2]]


def test_only_the_most_recently_used_tokens_are_kept(
    decoded: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(BankTokenVerifier, "kept", 2)
    v = verifier(FixedClock(NOW))
    a, b, c = token("C0001"), token("C0002"), token("C0003")
    for t in (a, b, a, c, a, b):  # c pushes b out (a was used after b)
        v.verify(t)
    assert decoded == [a, b, c, b]
