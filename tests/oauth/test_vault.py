"""The token vault: round trip, binding to company and kind, tampering, key rotation."""
from __future__ import annotations

import base64

import pytest
from cryptography.fernet import Fernet
from hypothesis import given, settings, strategies as st

from dashboard.vault import TokenVault, VaultError

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()


@settings(max_examples=200, deadline=None)
@given(token=st.text(max_size=2000), realm=st.text(alphabet="0123456789", min_size=1, max_size=20))
def test_round_trip_of_any_token(token, realm):
    vault = TokenVault([NEW, OLD])
    sealed = vault.seal(realm, "refresh", token)
    assert vault.open(realm, "refresh", sealed) == token


def test_ciphertext_is_bound_to_its_company_and_kind():
    vault = TokenVault([NEW])
    sealed = vault.seal("111", "access", "secret-access-token")
    for realm, kind in (("222", "access"), ("111", "refresh")):
        with pytest.raises(VaultError, match="belongs to another company") as info:
            vault.open(realm, kind, sealed)
        assert "secret-access-token" not in str(info.value)


@pytest.mark.parametrize("position", [0, 10, 40, 80, -5, -1])
def test_tampered_ciphertext_is_refused(position):
    vault = TokenVault([NEW])
    sealed = vault.seal("111", "refresh", "RT1-secret")
    flipped = sealed[:position] + ("A" if sealed[position] != "A" else "B") + \
        (sealed[position + 1:] if position != -1 else "")
    with pytest.raises(VaultError, match="cannot be decrypted"):
        vault.open("111", "refresh", flipped)


@settings(max_examples=1000, deadline=None)
@given(data=st.data())
def test_any_flipped_bit_of_a_sealed_token_is_refused(data):
    """S3 at the byte level: whatever byte changes (version, time, IV, body, MAC)."""
    vault = TokenVault([NEW, OLD])
    raw = bytearray(base64.urlsafe_b64decode(vault.seal("111", "refresh", "RT1-secret")))
    raw[data.draw(st.integers(0, len(raw) - 1), label="index")] ^= data.draw(st.integers(1, 255), label="mask")
    with pytest.raises(VaultError, match="cannot be decrypted"):
        vault.open("111", "refresh", base64.urlsafe_b64encode(bytes(raw)).decode())


def test_rotation_moves_tokens_to_the_newest_key():
    old_fleet = TokenVault([OLD])
    sealed = old_fleet.seal("111", "refresh", "RT1-secret")
    both = TokenVault([NEW, OLD])  # phase 1 readers/writers know both keys
    assert not both.is_current(sealed)
    rotated = both.rotate("111", "refresh", sealed)
    assert both.is_current(rotated)
    # MultiFernet.rotate keeps the creation time (S1): rotation does not make tokens look new.
    assert Fernet(NEW.encode()).extract_timestamp(rotated.encode()) == \
        Fernet(OLD.encode()).extract_timestamp(sealed.encode())
    assert TokenVault([NEW]).open("111", "refresh", rotated) == "RT1-secret"
    # Why the new key must be a secondary everywhere first: an old-only reader cannot read it.
    with pytest.raises(VaultError):
        old_fleet.open("111", "refresh", rotated)
    # Rotation checks the binding before re-encrypting.
    with pytest.raises(VaultError):
        both.rotate("222", "refresh", sealed)


def test_vault_repr_reveals_no_key():
    assert OLD not in repr(TokenVault([OLD])) and "TokenVault" in repr(TokenVault([OLD]))
