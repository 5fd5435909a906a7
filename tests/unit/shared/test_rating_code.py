from __future__ import annotations

from datetime import date

from shared.rating_code import ALPHABET, RatingCodes, is_rateable_dossier_id


def test_code_is_eight_unambiguous_characters_and_verifies() -> None:
    codes = RatingCodes.from_spec("1:secret-one")
    code = codes.issue("HCM-000123", "P27")
    assert len(code) == 8 and set(code) <= set(ALPHABET)
    assert not set(code) & set("01OIL")
    assert codes.verify("HCM-000123", "P27", code, today=date(2026, 11, 27))
    assert codes.verify("HCM-000123", "P27", code.lower(), today=date(2026, 11, 27))  # typed from paper
    assert not codes.verify("HCM-000124", "P27", code, today=date(2026, 11, 27))
    wrong_last = code[:-1] + ("2" if code[-1] != "2" else "3")
    assert not codes.verify("HCM-000123", "P27", wrong_last, today=date(2026, 11, 27))


def test_the_code_binds_the_owner_unit() -> None:
    codes = RatingCodes.from_spec("1:secret-one")
    code = codes.issue("HCM-000123", "P29")
    assert code != codes.issue("HCM-000123", "P28")
    assert not codes.verify("HCM-000123", "P28", code, today=date(2026, 11, 27))
    assert not codes.verify("HCM-000123", None, code, today=date(2026, 11, 27))  # owner not known yet
    assert codes.owner_of("HCM-000123", code, ["P01", "P28", "P29"], today=date(2026, 11, 27)) == "P29"
    assert codes.owner_of("HCM-000123", "ZZZZZZZZ", ["P01", "P28", "P29"], today=date(2026, 11, 27)) is None


def test_rotation_keeps_old_codes_until_their_key_expires() -> None:
    old = RatingCodes.from_spec("1:old-secret")
    old_code = old.issue("D-1", "P01")
    rotated = RatingCodes.from_spec("1:old-secret:2026-12-31,2:new-secret")
    new_code = rotated.issue("D-1", "P01")
    assert new_code != old_code and new_code[0] == ALPHABET[2]
    assert rotated.verify("D-1", "P01", old_code, today=date(2026, 12, 31))
    assert not rotated.verify("D-1", "P01", old_code, today=date(2027, 1, 1))
    assert rotated.verify("D-1", "P01", new_code, today=date(2027, 1, 1))


def test_unknown_key_version_fails() -> None:
    codes = RatingCodes.from_spec("1:s")
    code = codes.issue("D-1", "P01")
    assert not RatingCodes.from_spec("3:s").verify("D-1", "P01", code, today=date(2026, 1, 1))


def test_rateable_dossier_ids_are_the_rating_forms() -> None:
    from pydantic import TypeAdapter, ValidationError

    from services.feedback.api.schemas import DossierId

    form = TypeAdapter(DossierId)
    for value in ("HCM-000123", "A", "x" * 128, "A B", "HỒ-SƠ-1", "", "x" * 129, "D\x00", "D\n", "D\t1"):
        try:
            form.validate_python(value)
            form_accepts = form.validate_python(value) == value  # the form strips spaces: same id only
        except ValidationError:
            form_accepts = False
        assert is_rateable_dossier_id(value) == form_accepts, value
