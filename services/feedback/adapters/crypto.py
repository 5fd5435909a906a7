"""Secrets at rest: contact details encrypted (Fernet), access codes and fingerprints hashed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from shared.rating_code import ALPHABET


def _fernet(secret: str) -> Fernet:
    # Stretch any configured string into a valid 32-byte Fernet key.
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(secret.encode()).digest()))


class Sealer:
    """Encrypts contact details and flash cookies; the first configured key encrypts."""

    def __init__(self, keys: str) -> None:
        parts = [k.strip() for k in keys.split(",") if k.strip()]
        if not parts:
            raise ValueError("at least one contact key is required")
        self._fernet = MultiFernet([_fernet(k) for k in parts])
        self._mac_key = hashlib.sha256(b"sqi-feedback-mac:" + parts[0].encode()).digest()

    def seal(self, text: str) -> bytes:
        return self._fernet.encrypt(text.encode())

    def open(self, token: bytes, *, ttl: int | None = None) -> str | None:
        try:
            data = self._fernet.decrypt(token, ttl=ttl)
        except InvalidToken:
            return None
        return data.decode()

    def fingerprint(self, *parts: str) -> bytes:
        """A keyed hash: equal inputs match, but the inputs (an address) cannot be recovered."""
        return hmac.new(self._mac_key, "\x1f".join(parts).encode(), hashlib.sha256).digest()


def new_token(length: int) -> str:
    """A random code from the unambiguous alphabet of rating codes (readable aloud, typeable)."""
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def hash_access_code(code: str) -> bytes:
    return hashlib.sha256(code.strip().upper().encode()).digest()


def access_code_matches(code: str, stored_hash: bytes) -> bool:
    return hmac.compare_digest(hash_access_code(code), stored_hash)
