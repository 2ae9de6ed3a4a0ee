"""Protection of personal data at rest: deterministic tokens and authenticated encryption.

A :class:`PiiVault` holds one 32-byte master key and derives two independent keys from it
with HKDF-SHA256: one for tokens, one for encryption.

- :meth:`PiiVault.token` is a keyed HMAC-SHA256 of the normalised value, separated by
  ``kind`` (``id_number``, ``phone``, ...). The same value always gives the same token, so
  tables can be joined and looked up by token without anyone seeing the value, and a token of
  one kind never equals a token of another kind for the same text.
- :meth:`PiiVault.encrypt` is AES-256-GCM with a fresh random 96-bit nonce; the text form is
  ``v1.<url-safe base64 of nonce + ciphertext + tag>``. :meth:`PiiVault.decrypt` raises
  :class:`PiiError` on a wrong key or any change to the text.

The master key lives in a file created by :func:`load_or_create_key` with mode 0600, or in
a secret store; never in the database next to the data it protects.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Callable, Iterable
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from creditfactory.errors import DomainError
from creditfactory.security import phone as _phone

__all__ = ["KEY_BYTES", "TOKEN_CHARS", "PiiError", "PiiVault", "generate_key", "load_or_create_key"]

#: Length of the master key and of each derived key.
KEY_BYTES = 32
#: Length of a token in hex characters (128 bits).
TOKEN_CHARS = 32

_NONCE_BYTES = 12
_TAG_BYTES = 16
_PREFIX = "v1."
_AAD = b"creditfactory.pii.v1"
_HKDF_SALT = b"creditfactory.pii"
_KIND = re.compile(r"^[a-z][a-z0-9_.]{0,63}$", re.ASCII)


class PiiError(DomainError):
    code = "pii_error"
    http_status = 500
    title = "Protected data could not be read"


def _normalise_id_number(value: str) -> str:
    return value.strip().upper()


def _normalise_phone(value: str) -> str:
    return _phone.normalise(value) if _phone.is_valid(value) else value.strip()


def _normalise_plain(value: str) -> str:
    return value.strip()


_NORMALISERS: dict[str, Callable[[str], str]] = {
    "id_number": _normalise_id_number,
    "phone": _normalise_phone,
}


def _derive(master: bytes, purpose: bytes) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=_HKDF_SALT, info=purpose)
    return hkdf.derive(master)


def _check_kind(kind: str) -> str:
    if not isinstance(kind, str) or not _KIND.match(kind):
        raise ValueError(f"token kind must be a lower-case name like 'id_number', got {kind!r}")
    return kind


class PiiVault:
    """Tokens and encryption for personal data under one master key.

    >>> vault = PiiVault(generate_key())
    >>> vault.decrypt(vault.encrypt("13812345678"))
    '13812345678'
    >>> vault.token("11010519491231002x", kind="id_number") == vault.token(
    ...     "11010519491231002X", kind="id_number")
    True
    """

    __slots__ = ("_aead", "_digest_key", "_hmac")

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes | bytearray):
            raise TypeError(f"the master key must be bytes, got {type(key).__name__}")
        if len(key) != KEY_BYTES:
            raise ValueError(f"the master key must be {KEY_BYTES} bytes, got {len(key)}")
        master = bytes(key)
        self._hmac = hmac.new(_derive(master, b"creditfactory/pii/token/v1"), digestmod=hashlib.sha256)
        self._aead = AESGCM(_derive(master, b"creditfactory/pii/encrypt/v1"))
        self._digest_key = _derive(master, b"creditfactory/pii/digest/v1")

    def __repr__(self) -> str:
        return "PiiVault(<key hidden>)"

    # -- tokens -------------------------------------------------------------------------------

    def _kind_hmac(self, kind: str) -> hmac.HMAC:
        h = self._hmac.copy()
        h.update(_check_kind(kind).encode("ascii") + b"\x00")
        return h

    def token(self, value: str, *, kind: str) -> str:
        """The deterministic token of ``value`` for ``kind`` (32 hex characters).

        Values are normalised before hashing: surrounding spaces are dropped, ID numbers are
        upper-cased (``x`` → ``X``), valid mobile numbers are reduced to their 11 digits.
        An empty value raises :class:`ValueError`.
        """
        if not isinstance(value, str):
            raise TypeError(f"can only tokenise text, got {type(value).__name__}")
        text = _NORMALISERS.get(kind, _normalise_plain)(value)
        if not text:
            raise ValueError(f"cannot tokenise an empty {kind}")
        h = self._kind_hmac(kind)
        h.update(text.encode("utf-8"))
        return h.hexdigest()[:TOKEN_CHARS]

    def tokens(
        self, values: Iterable[str | None], *, kind: str, normalised: bool = False
    ) -> list[str | None]:
        """Tokens for many values; ``None`` and blank values give ``None`` (missing).

        With ``normalised`` the caller vouches that the values are already in normal form
        (validated and normalised in bulk, as ingestion does), and the per-value step is skipped.
        """
        base = self._kind_hmac(kind)
        normalise = str.strip if normalised else _NORMALISERS.get(kind, _normalise_plain)
        out: list[str | None] = []
        append = out.append
        for value in values:
            if value is None:
                append(None)
                continue
            text = normalise(value)
            if not text:
                append(None)
                continue
            h = base.copy()
            h.update(text.encode("utf-8"))
            append(h.hexdigest()[:TOKEN_CHARS])
        return out

    # -- encryption ---------------------------------------------------------------------------

    def encrypt(self, value: str) -> str:
        """Encrypt ``value`` to ``v1.<base64>`` text; each call uses a fresh nonce."""
        if not isinstance(value, str):
            raise TypeError(f"can only encrypt text, got {type(value).__name__}")
        nonce = secrets.token_bytes(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, value.encode("utf-8"), _AAD)
        return _PREFIX + base64.urlsafe_b64encode(nonce + sealed).decode("ascii").rstrip("=")

    def decrypt(self, text: str) -> str:
        """The value behind ``text``; :class:`PiiError` on a wrong key, tampering or bad format."""
        if not isinstance(text, str) or not text.startswith(_PREFIX):
            raise PiiError("not encrypted personal data: expected text starting with 'v1.'")
        body = text[len(_PREFIX) :]
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (binascii.Error, ValueError):
            raise PiiError("encrypted personal data is not valid base64") from None
        if len(raw) < _NONCE_BYTES + _TAG_BYTES:
            raise PiiError("encrypted personal data is truncated")
        nonce, sealed = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:]
        try:
            plain = self._aead.decrypt(nonce, sealed, _AAD)
        except InvalidTag:
            raise PiiError(
                "encrypted personal data could not be decrypted: wrong key or altered data"
            ) from None
        return plain.decode("utf-8")

    def encrypt_many(self, values: Iterable[str | None]) -> list[str | None]:
        """:meth:`encrypt` each value; ``None`` stays ``None`` (one random draw for all nonces)."""
        items = list(values)
        nonces = secrets.token_bytes(_NONCE_BYTES * len(items))
        seal = self._aead.encrypt
        encode = base64.urlsafe_b64encode
        out: list[str | None] = []
        for i, value in enumerate(items):
            if value is None:
                out.append(None)
                continue
            if not isinstance(value, str):
                raise TypeError(f"can only encrypt text, got {type(value).__name__}")
            nonce = nonces[i * _NONCE_BYTES : (i + 1) * _NONCE_BYTES]
            sealed = seal(nonce, value.encode("utf-8"), _AAD)
            out.append(_PREFIX + encode(nonce + sealed).decode("ascii").rstrip("="))
        return out

    def digests(self, values: Iterable[str]) -> list[str]:
        """Keyed BLAKE2b digests (32 hex characters) of texts such as whole rows: a content
        fingerprint that cannot be reversed by guessing the personal data it covers."""
        key = self._digest_key
        return [hashlib.blake2b(v.encode("utf-8"), key=key, digest_size=16).hexdigest() for v in values]

    def decrypt_many(self, texts: Iterable[str | None]) -> list[str | None]:
        """:meth:`decrypt` each text; ``None`` stays ``None``."""
        return [None if t is None else self.decrypt(t) for t in texts]


def generate_key() -> bytes:
    """A new random 32-byte master key."""
    return secrets.token_bytes(KEY_BYTES)


def _read_key(path: Path) -> bytes:
    try:
        text = path.read_text(encoding="ascii").strip()
    except UnicodeDecodeError:
        raise PiiError(f"key file {path} is malformed: expected base64 text") from None
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise PiiError(f"key file {path} is malformed: expected base64 text") from None
    if len(key) != KEY_BYTES:
        raise PiiError(f"key file {path} is malformed: holds {len(key)} bytes, expected {KEY_BYTES}")
    return key


def load_or_create_key(path: Path) -> bytes:
    """Read the master key from ``path``, or create the file with a new key if it is missing.

    The file holds the key as one line of base64 and is created with mode 0600 (missing
    parent folders with 0700). A file that is not a base64 32-byte key raises
    :class:`PiiError` naming the file.
    """
    path = Path(path)
    if path.exists():
        return _read_key(path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = generate_key()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it first: use theirs
        return _read_key(path)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, base64.b64encode(key) + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    return key
