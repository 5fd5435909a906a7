"""Rating codes (mã đánh giá): 8 characters that prove a citizen holds a real dossier's receipt.

The code is an HMAC of the dossier id and its owner unit (the unit that received it first)
under a versioned server secret, so nothing secret is stored per dossier, and a code issued to
one unit's dossier proves nothing for a same-named dossier claimed elsewhere. The first
character names the key version; rotating the secret adds a new version and keeps older ones
valid until their ``valid_until`` date.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

# No 0/O, 1/I/L: a code read aloud or typed from paper must not be ambiguous.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 8

# The dossier ids the citizen's rating form accepts (feedback's ``DossierId``): ingest refuses
# any other, so no code is issued that could never be used.
DOSSIER_ID_PATTERN = r"^[\x21-\x7e]{1,128}$"
_DOSSIER_ID = re.compile(DOSSIER_ID_PATTERN)


def is_rateable_dossier_id(value: str) -> bool:
    """1–128 printable ASCII characters, no space: what a receipt can carry and a form accept."""
    return _DOSSIER_ID.fullmatch(value) is not None


@dataclass(frozen=True)
class RatingKey:
    version: int
    secret: bytes
    valid_until: date | None = None


def parse_keys(spec: str) -> list[RatingKey]:
    """Parse ``"1:secret[:2027-01-31],2:secret"``; versions 0–30 (one alphabet character)."""
    keys = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        fields = part.split(":")
        if len(fields) not in (2, 3) or not fields[0].isdigit() or not fields[1]:
            raise ValueError("rating code key must be 'version:secret[:valid_until]'")
        version = int(fields[0])
        if not 0 <= version < len(ALPHABET):
            raise ValueError(f"rating code key version must be 0..{len(ALPHABET) - 1}")
        until = date.fromisoformat(fields[2]) if len(fields) == 3 else None
        keys.append(RatingKey(version, fields[1].encode(), until))
    if not keys:
        raise ValueError("at least one rating code key is required")
    return sorted(keys, key=lambda k: k.version)


def _message(dossier_id: str, unit_code: str) -> bytes:
    # A line break cannot occur in a dossier id (printable ASCII) nor a unit code.
    return f"{dossier_id}\n{unit_code}".encode()


def _digest_chars(key: RatingKey, message: bytes, count: int) -> str:
    digest = int.from_bytes(hmac.new(key.secret, message, hashlib.sha256).digest(), "big")
    chars = []
    for _ in range(count):
        digest, index = divmod(digest, len(ALPHABET))
        chars.append(ALPHABET[index])
    return "".join(chars)


class RatingCodes:
    def __init__(self, keys: list[RatingKey]) -> None:
        self._keys = {k.version: k for k in keys}
        self._current = max(keys, key=lambda k: k.version)

    @classmethod
    def from_spec(cls, spec: str) -> RatingCodes:
        return cls(parse_keys(spec))

    def issue(self, dossier_id: str, unit_code: str) -> str:
        """The code of a dossier owned by ``unit_code`` (the unit that received it first)."""
        key = self._current
        return ALPHABET[key.version] + _digest_chars(key, _message(dossier_id, unit_code), CODE_LENGTH - 1)

    def verify(self, dossier_id: str, unit_code: str | None, code: str, *, today: date) -> bool:
        """Constant-time check; an unknown owner, unknown versions and expired keys simply fail."""
        code = code.strip().upper()
        if unit_code is None or len(code) != CODE_LENGTH or code[0] not in ALPHABET:
            return False
        key = self._keys.get(ALPHABET.index(code[0]))
        if key is None or (key.valid_until is not None and today > key.valid_until):
            return False
        expected = ALPHABET[key.version] + _digest_chars(key, _message(dossier_id, unit_code), CODE_LENGTH - 1)
        return hmac.compare_digest(expected.encode(), code.encode())

    def owner_of(self, dossier_id: str, code: str, candidates: Iterable[str], *, today: date) -> str | None:
        """The unit among ``candidates`` for which ``code`` is the dossier's code, if any.

        For a dossier whose events have not reached the verifier yet: ingest lets one unit only
        receive a dossier, so a matching unit is its owner. One HMAC per candidate.
        """
        return next((u for u in candidates if self.verify(dossier_id, u, code, today=today)), None)
