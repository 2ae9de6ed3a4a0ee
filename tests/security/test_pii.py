"""Tokens, encryption and the master key file."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from creditfactory.errors import DomainError
from creditfactory.security.pii import PiiError, PiiVault, generate_key, load_or_create_key

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


@pytest.fixture(scope="module")
def vault() -> PiiVault:
    return PiiVault(KEY)


class TestVaultKey:
    def test_needs_32_bytes(self) -> None:
        with pytest.raises(ValueError, match="32 bytes"):
            PiiVault(b"short")

    def test_needs_bytes(self) -> None:
        with pytest.raises(TypeError):
            PiiVault("0" * 32)  # type: ignore[arg-type]

    def test_repr_hides_the_key(self, vault: PiiVault) -> None:
        assert KEY.hex() not in repr(vault)
        assert "hidden" in repr(vault)

    def test_generate_key(self) -> None:
        a, b = generate_key(), generate_key()
        assert len(a) == 32
        assert a != b


class TestToken:
    def test_is_32_hex_characters(self, vault: PiiVault) -> None:
        token = vault.token("11010519491231002X", kind="id_number")
        assert len(token) == 32
        int(token, 16)

    def test_is_stable(self, vault: PiiVault) -> None:
        first = vault.token("11010519491231002X", kind="id_number")
        assert PiiVault(KEY).token("11010519491231002X", kind="id_number") == first

    def test_depends_on_the_key(self, vault: PiiVault) -> None:
        assert PiiVault(OTHER_KEY).token("13812345678", kind="phone") != vault.token(
            "13812345678", kind="phone"
        )

    def test_kinds_are_separated(self, vault: PiiVault) -> None:
        value = "11010519491231002X"
        assert vault.token(value, kind="id_number") != vault.token(value, kind="account_number")

    def test_kind_and_value_cannot_be_shifted_into_each_other(self, vault: PiiVault) -> None:
        assert vault.token("x", kind="ab") != vault.token("bx", kind="a")

    def test_neighbouring_values_get_unrelated_tokens(self, vault: PiiVault) -> None:
        a = vault.token("13812345678", kind="phone")
        b = vault.token("13812345679", kind="phone")
        assert a != b
        assert sum(x == y for x, y in zip(a, b, strict=True)) < 16

    def test_id_numbers_are_normalised(self, vault: PiiVault) -> None:
        assert vault.token(" 11010519491231002x", kind="id_number") == vault.token(
            "11010519491231002X", kind="id_number"
        )

    def test_only_id_numbers_are_upper_cased(self, vault: PiiVault) -> None:
        assert vault.token("abc", kind="name") != vault.token("ABC", kind="name")
        assert vault.token(" abc ", kind="name") == vault.token("abc", kind="name")

    def test_phone_numbers_are_normalised(self, vault: PiiVault) -> None:
        assert vault.token("+86 138-1234-5678", kind="phone") == vault.token("13812345678", kind="phone")

    @pytest.mark.parametrize("kind", ["", "ID", "id number", "id\x00number", "1d"])
    def test_kind_must_be_a_plain_name(self, vault: PiiVault, kind: str) -> None:
        with pytest.raises(ValueError, match="kind"):
            vault.token("x", kind=kind)

    def test_empty_value_is_refused(self, vault: PiiVault) -> None:
        with pytest.raises(ValueError, match="empty"):
            vault.token("  ", kind="name")


class TestTokens:
    def test_matches_token_one_by_one(self, vault: PiiVault) -> None:
        values = ["11010519491231002X", "11010519491231002x", "440524188001010014"]
        assert vault.tokens(values, kind="id_number") == [vault.token(v, kind="id_number") for v in values]

    def test_missing_values_stay_missing(self, vault: PiiVault) -> None:
        out = vault.tokens(["13812345678", None, "", "  "], kind="phone")
        assert out[0] == vault.token("13812345678", kind="phone")
        assert out[1:] == [None, None, None]

    def test_accepts_any_iterable(self, vault: PiiVault) -> None:
        assert vault.tokens(iter(["a", "b"]), kind="name") == [
            vault.token("a", kind="name"),
            vault.token("b", kind="name"),
        ]

    @given(st.lists(st.text(min_size=1).filter(str.strip), max_size=20))
    def test_property_same_as_token(self, values: list[str]) -> None:
        vault = PiiVault(KEY)
        assert vault.tokens(values, kind="name") == [vault.token(v, kind="name") for v in values]


class TestEncryption:
    @pytest.mark.parametrize("value", ["13812345678", "张三", "北京市朝阳区建国路88号", ""])
    def test_round_trip(self, vault: PiiVault, value: str) -> None:
        text = vault.encrypt(value)
        assert text.startswith("v1.")
        assert vault.decrypt(text) == value

    @settings(max_examples=50)
    @given(st.text())
    def test_round_trip_any_text(self, value: str) -> None:
        vault = PiiVault(KEY)
        assert vault.decrypt(vault.encrypt(value)) == value

    def test_is_url_safe_text_without_the_value(self, vault: PiiVault) -> None:
        text = vault.encrypt("13812345678")
        assert "13812345678" not in text
        assert set(text[3:]) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")

    def test_fresh_nonce_every_time(self, vault: PiiVault) -> None:
        assert vault.encrypt("13812345678") != vault.encrypt("13812345678")

    def test_wrong_key_is_detected(self, vault: PiiVault) -> None:
        text = vault.encrypt("13812345678")
        with pytest.raises(PiiError, match="wrong key or altered"):
            PiiVault(OTHER_KEY).decrypt(text)

    def test_every_changed_byte_is_detected(self, vault: PiiVault) -> None:
        text = vault.encrypt("11010519491231002X")
        raw = bytearray(base64.urlsafe_b64decode(text[3:] + "=" * (-len(text[3:]) % 4)))
        for i in range(len(raw)):
            tampered = bytearray(raw)
            tampered[i] ^= 0x01
            forged = "v1." + base64.urlsafe_b64encode(bytes(tampered)).decode().rstrip("=")
            with pytest.raises(PiiError):
                vault.decrypt(forged)

    @pytest.mark.parametrize("text", ["", "13812345678", "v2.AAAA", "v1.", "v1.AAAA", "v1.@@@@"])
    def test_malformed_text(self, vault: PiiVault, text: str) -> None:
        with pytest.raises(PiiError):
            vault.decrypt(text)

    def test_truncated_text(self, vault: PiiVault) -> None:
        text = vault.encrypt("13812345678")
        with pytest.raises(PiiError):
            vault.decrypt(text[:-4])

    def test_error_is_a_domain_error(self) -> None:
        assert issubclass(PiiError, DomainError)
        assert PiiError.code == "pii_error"

    def test_many(self, vault: PiiVault) -> None:
        encrypted = vault.encrypt_many(["a", None, "张三"])
        assert encrypted[1] is None
        assert vault.decrypt_many(encrypted) == ["a", None, "张三"]

    def test_encrypt_refuses_non_text(self, vault: PiiVault) -> None:
        with pytest.raises(TypeError):
            vault.encrypt(b"bytes")  # type: ignore[arg-type]


class TestKeyFile:
    def test_creates_a_private_file(self, tmp_path: Path) -> None:
        path = tmp_path / "keys" / "pii.key"
        key = load_or_create_key(path)
        assert len(key) == 32
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert base64.b64decode(path.read_text().strip()) == key

    def test_private_even_with_a_permissive_umask(self, tmp_path: Path) -> None:
        old = os.umask(0)
        try:
            path = tmp_path / "pii.key"
            load_or_create_key(path)
        finally:
            os.umask(old)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600

    def test_reads_the_same_key_back(self, tmp_path: Path) -> None:
        path = tmp_path / "pii.key"
        first = load_or_create_key(path)
        assert load_or_create_key(path) == first
        vault = PiiVault(first)
        assert PiiVault(load_or_create_key(path)).decrypt(vault.encrypt("x")) == "x"

    def test_reads_an_existing_key(self, tmp_path: Path) -> None:
        path = tmp_path / "pii.key"
        path.write_text(base64.b64encode(KEY).decode() + "\n")
        assert load_or_create_key(path) == KEY

    @pytest.mark.parametrize(
        ("content", "reason"),
        [
            ("not base64 at all!", "base64"),
            (base64.b64encode(b"sixteen bytes ok").decode(), "16 bytes"),
            ("", "0 bytes"),
        ],
    )
    def test_malformed_file_is_named(self, tmp_path: Path, content: str, reason: str) -> None:
        path = tmp_path / "pii.key"
        path.write_text(content)
        with pytest.raises(PiiError, match=reason) as excinfo:
            load_or_create_key(path)
        assert str(path) in str(excinfo.value)

    def test_binary_file_is_named(self, tmp_path: Path) -> None:
        path = tmp_path / "pii.key"
        path.write_bytes(b"\xff\xfe" + KEY)
        with pytest.raises(PiiError, match="malformed") as excinfo:
            load_or_create_key(path)
        assert str(path) in str(excinfo.value)


class TestDigestsAndBulkEncryption:
    def test_digests_are_stable_keyed_and_short(self) -> None:
        a, b = PiiVault(bytes(32)), PiiVault(bytes([1]) * 32)
        rows = ["C001\x1f13812345678", "C002\x1f13812345679"]
        assert a.digests(rows) == a.digests(rows)
        assert a.digests(rows) != b.digests(rows)
        assert all(len(d) == 32 and int(d, 16) >= 0 for d in a.digests(rows))
        assert a.digests(rows)[0] != a.digests(rows)[1]

    def test_encrypt_many_round_trips_with_fresh_nonces(self) -> None:
        vault = PiiVault(bytes(32))
        sealed = vault.encrypt_many(["张三", None, "张三"])
        assert sealed[1] is None
        assert sealed[0] != sealed[2]
        assert vault.decrypt_many(sealed) == ["张三", None, "张三"]
