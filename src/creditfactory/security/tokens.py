"""Signed bearer tokens for staff and customers.

A token is ``cf1.<payload>.<signature>``: the payload is base64url JSON (subject, kind, roles,
branch, customer, expiry), the signature HMAC-SHA256 under the configured secret. The bank's
identity provider (mobile banking, the staff portal) can issue the same format; ``creditfactory
auth token`` issues one for operators and the demo.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import timedelta

from creditfactory.clock import Clock
from creditfactory.errors import Unauthenticated
from creditfactory.security.roles import Principal, PrincipalKind, Role

_PREFIX = "cf1"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    def __init__(self, secret: bytes, clock: Clock, *, ttl: timedelta = timedelta(hours=8)) -> None:
        if len(secret) < 16:
            raise ValueError("token secret must be at least 16 bytes")
        self._secret = secret
        self._clock = clock
        self.ttl = ttl

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self._secret, f"{_PREFIX}.{body}".encode(), hashlib.sha256).digest())

    def issue(self, principal: Principal, *, ttl: timedelta | None = None) -> str:
        expires = self._clock.now() + (ttl or self.ttl)
        payload = {
            "sub": principal.id,
            "kind": str(principal.kind),
            "roles": sorted(str(r) for r in principal.roles),
            "branch": principal.branch_id,
            "customer": principal.customer_id,
            "exp": int(expires.timestamp()),
        }
        body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
        return f"{_PREFIX}.{body}.{self._sign(body)}"

    def verify(self, token: str) -> Principal:
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != _PREFIX:
            raise Unauthenticated("malformed bearer token")
        body, signature = parts[1], parts[2]
        if not hmac.compare_digest(signature, self._sign(body)):
            raise Unauthenticated("bearer token signature does not verify")
        try:
            payload = json.loads(_unb64(body))
            roles = frozenset(Role(r) for r in payload["roles"])
            kind = PrincipalKind(payload["kind"])
            expires = float(payload["exp"])
            principal = Principal(
                id=payload["sub"],
                roles=roles,
                kind=kind,
                branch_id=payload.get("branch"),
                customer_id=payload.get("customer"),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise Unauthenticated(f"bearer token payload is invalid ({exc})") from None
        if expires < self._clock.now().timestamp():
            raise Unauthenticated("bearer token has expired")
        return principal
