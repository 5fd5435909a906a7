from __future__ import annotations

from datetime import date

from shared.rating_code import ALPHABET, RatingCodes


def test_code_is_eight_unambiguous_characters_and_verifies() -> None:
    codes = RatingCodes.from_spec("1:secret-one")
    code = codes.issue("HCM-000123")
    assert len(code) == 8 and set(code) <= set(ALPHABET)
    assert not set(code) & set("01OIL")
    assert codes.verify("HCM-000123", code, today=date(2026, 11, 27))
    assert codes.verify("HCM-000123", code.lower(), today=date(2026, 11, 27))  # typed from paper
    assert not codes.verify("HCM-000124", code, today=date(2026, 11, 27))
    assert not codes.verify("HCM-000123", code[:-1] + ("2" if code[-1] != "2" else "3"), today=date(2026, 11, 27))


def test_rotation_keeps_old_codes_until_their_key_expires() -> None:
    old = RatingCodes.from_spec("1:old-secret")
    old_code = old.issue("D-1")
    rotated = RatingCodes.from_spec("1:old-secret:2026-12-31,2:new-secret")
    new_code = rotated.issue("D-1")
    assert new_code != old_code and new_code[0] == ALPHABET[2]
    assert rotated.verify("D-1", old_code, today=date(2026, 12, 31))
    assert not rotated.verify("D-1", old_code, today=date(2027, 1, 1))
    assert rotated.verify("D-1", new_code, today=date(2027, 1, 1))


def test_unknown_key_version_fails() -> None:
    codes = RatingCodes.from_spec("1:s")
    code = codes.issue("D-1")
    assert not RatingCodes.from_spec("3:s").verify("D-1", code, today=date(2026, 1, 1))
