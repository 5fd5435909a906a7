import copy
from decimal import Decimal

import pytest

from services.scoring.domain import load_builtin, methodology_from_dict, validate_methodology
from services.scoring.domain.methodology import builtin_document


@pytest.mark.parametrize("mid", ["tax-2025", "portal-766"])
def test_builtins_are_valid(mid: str) -> None:
    assert validate_methodology(builtin_document(mid)) == []
    m = load_builtin(mid)
    assert m.max_total == 100 and m.min_dossiers == 30


def test_layouts() -> None:
    tax, portal = load_builtin("tax-2025"), load_builtin("portal-766")
    assert [g.max_points for g in tax.groups] == [18, 20, 22, 22, 18]
    assert [g.max_points for g in portal.groups] == [18, 20, 12, 10, 22, 18]
    by_id = {i.id: i for i in portal.indicators}
    assert by_id["SO_HOA_GIAY_TO_GIAI_QUYET"].basis == "3.2"
    assert by_id["SO_HOA_GIAY_TO_GIAI_QUYET"].max_points == 4
    assert by_id["ELECTRONIC_CERTIFIED_COPY"].conversion == "constant"
    assert by_id["DOSSIER_RECEIVING_SATISFACTION"].threshold == 90
    tax_ids = {i.id: i for i in tax.indicators}
    assert tax_ids["3.2"].max_points == 6 and not tax_ids["2.2"].scored and not tax_ids["5.1"].scored
    assert tax_ids["4.3"].threshold == 50 and tax_ids["4.6"].rounds_ratio_first
    assert tax_ids["1.1"].measured_at == "central" and tax_ids["1.4"].measured_at == "unit"
    assert [(i.id, i.zero_rule) for i in tax.indicators if i.zero_rule == "full"] == [("5.2", "full"), ("5.3", "full")]


def test_grades() -> None:
    m = load_builtin()
    assert m.grade(Decimal("90.00")).code == "excellent"
    assert m.grade(Decimal("89.99")).code == "good"
    assert m.grade(Decimal("65")).label_vi == "Khá"
    assert m.grade(Decimal("50")).code == "average"
    assert m.grade(Decimal("49.99")).label_en == "Weak"


def test_validator_reports_problems() -> None:
    doc = copy.deepcopy(builtin_document("tax-2025"))
    doc["groups"][0]["indicators"][0]["max_points"] = 7
    doc["groups"][1]["indicators"][0]["basis"] = "9.9"
    doc["grade_bands"][1]["min_total"] = 95
    doc["groups"][2]["indicators"][2]["threshold"] = 100
    errors = validate_methodology(doc)
    assert any("sum of its indicators" in e for e in errors)
    assert any("sum to 101" in e for e in errors)
    assert any("'9.9'" in e for e in errors)
    assert any("descending" in e for e in errors)
    assert any("threshold conversion" in e for e in errors)
    with pytest.raises(ValueError):
        methodology_from_dict(doc)
    assert validate_methodology([]) != []
