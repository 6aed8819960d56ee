"""The token vault: tokens encrypted at rest, each ciphertext bound to its company.

MultiFernet encrypts with the newest key (first in ``TOKEN_ENCRYPTION_KEYS``) and
decrypts with any. Fernet has no associated data, so the company and the token's kind
travel inside the envelope, ``{"r": realm, "k": "access"|"refresh", "t": token}``,
and are checked on decrypt: a ciphertext copied onto another company's row is refused.
"""
from __future__ import annotations

import functools
import json
from typing import Literal, Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

TokenKind = Literal["access", "refresh"]


class VaultError(Exception):
    """A stored token cannot be used: wrong key, tampered, or bound to another row.
    The message names the company and the kind, never the token."""


class TokenVault:
    """Seal and open tokens with a list of Fernet keys, newest first."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("the vault needs at least one key")
        fernets = [Fernet(key.encode() if isinstance(key, str) else key) for key in keys]
        self._all = MultiFernet(fernets)
        self._newest = fernets[0]

    def __repr__(self) -> str:
        return "<TokenVault>"

    def seal(self, realm: str, kind: TokenKind, token: str) -> str:
        """Encrypt ``token`` bound to ``realm`` and ``kind``; return text for a column."""
        envelope = json.dumps({"r": realm, "k": kind, "t": token}, separators=(",", ":"))
        return self._all.encrypt(envelope.encode()).decode("ascii")

    def open(self, realm: str, kind: TokenKind, ciphertext: str) -> str:
        """Decrypt a column value and check it belongs to ``realm`` and ``kind``."""
        try:
            envelope = json.loads(self._all.decrypt(ciphertext.encode("ascii")))
        except (InvalidToken, ValueError, UnicodeError):
            raise VaultError(f"The stored {kind} token of company {realm} cannot be decrypted "
                             "(wrong TOKEN_ENCRYPTION_KEYS, or the value was altered).") from None
        if not isinstance(envelope, dict) or envelope.get("r") != realm or envelope.get("k") != kind \
                or not isinstance(envelope.get("t"), str):
            raise VaultError(f"The stored {kind} token of company {realm} belongs to another "
                             "company or column; it was refused.")
        return envelope["t"]

    def is_current(self, ciphertext: str) -> bool:
        """Whether the newest key encrypted this value (rotation has nothing to do)."""
        try:
            self._newest.decrypt(ciphertext.encode("ascii"))
            return True
        except (InvalidToken, UnicodeError):
            return False

    def rotate(self, realm: str, kind: TokenKind, ciphertext: str) -> str:
        """Re-encrypt under the newest key after checking the binding (plaintext unchanged)."""
        self.open(realm, kind, ciphertext)
        return self._all.rotate(ciphertext.encode("ascii")).decode("ascii")


@functools.lru_cache(maxsize=4)
def vault_for(keys: tuple[str, ...]) -> TokenVault:
    """Return the vault for these keys (built once per key list)."""
    return TokenVault(keys)
