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
        # Access codes: an HMAC under every configured key verifies, the first one hashes.
        self._code_keys = [hashlib.sha256(b"sqi-petition-access:" + k.encode()).digest() for k in parts]

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

    def access_code_hash(self, petition_id: str, code: str, *, key_index: int = 0) -> bytes:
        """HMAC of (petition id, code) under a server key: a stolen table yields no codes.

        Eight characters of a 31-letter alphabet are ~2^40 codes: a plain hash of them is
        reversed by brute force in minutes, a keyed one not at all without the key.
        """
        message = f"{petition_id}\x1f{_canonical(code)}".encode()
        return hmac.new(self._code_keys[key_index], message, hashlib.sha256).digest()

    def access_code_matches(self, petition_id: str, code: str, stored: bytes) -> bool:
        candidates = [self.access_code_hash(petition_id, code, key_index=i) for i in range(len(self._code_keys))]
        # Petitions filed before keyed hashing stored an unkeyed SHA-256; they still verify.
        candidates.append(hashlib.sha256(_canonical(code).encode()).digest())
        return any(hmac.compare_digest(candidate, stored) for candidate in candidates)


def _canonical(code: str) -> str:
    return code.strip().upper()


def new_token(length: int) -> str:
    """A random code from the unambiguous alphabet of rating codes (readable aloud, typeable)."""
    return "".join(secrets.choice(ALPHABET) for _ in range(length))
