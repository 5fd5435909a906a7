"""Guessing petition access codes (mã tra cứu PAKN) is limited, per petition and per address.

Wrong codes are counted twice: against the petition asked for (so one petition cannot be
guessed at by many addresses) and against the client address (so one address cannot try
one code against many petitions). Either count reaching its limit within the window locks
further attempts for a while, the right code included — otherwise guessing would continue.
The counting itself is the rating-code lockout's (``domain.lockout``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

# One petition: a citizen who mistypes a few times is not locked out for long.
PETITION_MAX_FAILURES = 5
# One client address: several petitions followed from one office's shared address are fine.
ADDRESS_MAX_FAILURES = 20
LOCK_FOR = timedelta(hours=1)


@dataclass(frozen=True)
class AccessPolicy:
    petition_max_failures: int = PETITION_MAX_FAILURES
    address_max_failures: int = ADDRESS_MAX_FAILURES
    lock_for: timedelta = LOCK_FOR


def petition_key(petition_id: str) -> str:
    return f"petition:{petition_id}"


def address_key(address_fingerprint: bytes) -> str:
    """The address is keyed by a keyed hash: the table never holds an address."""
    return f"address:{address_fingerprint.hex()}"
