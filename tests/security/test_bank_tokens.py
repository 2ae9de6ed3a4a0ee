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


@pytest.fixture(scope="module")
def keys() -> tuple[Any, str]:
    """A bank's RSA private key and its public key in PEM."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public.decode()


class TestRs256Key:
    def test_the_key_is_read_once_when_configured_not_at_each_token(
        self, keys: tuple[Any, str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        private, public = keys
        check = BankTokenVerifier(
            BankTokenConfig(algorithm="RS256", key=public, customer_claim="cif"), FixedClock(NOW)
        )
        reads: list[bytes] = []
        load = jwt.algorithms.load_pem_public_key  # type: ignore[attr-defined]

        def counted(data: bytes, *args: Any, **kwargs: Any) -> Any:
            reads.append(data)
            return load(data, *args, **kwargs)

        monkeypatch.setattr(jwt.algorithms, "load_pem_public_key", counted)
        claims = {"cif": "C0001", "exp": int((NOW + timedelta(minutes=10)).timestamp())}
        for n in range(3):
            assert (
                check.verify(jwt.encode({**claims, "n": n}, private, algorithm="RS256")).customer_id
                == "C0001"
            )
        assert reads == []
        # a token of another key is refused, and so is one of another algorithm
        from cryptography.hazmat.primitives.asymmetric import rsa

        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        with pytest.raises(Unauthenticated, match="signature"):
            check.verify(jwt.encode(claims, other, algorithm="RS256"))
        with pytest.raises(Unauthenticated, match="invalid"):
            check.verify(token())  # HS256

    def test_a_key_that_cannot_be_read_is_refused_when_configured(self, keys: tuple[Any, str]) -> None:
        _, public = keys
        lines = public.splitlines()
        broken = "\n".join([lines[0], lines[1][:20] + "broken", lines[-1]])
        with pytest.raises(ValueError, match="cannot be read as a PEM public key"):
            BankTokenConfig(algorithm="RS256", key=broken)
