"""Petition categories, classified as the national portal's indicator 5.1 does.

The portal counts petitions about the administrative procedure itself (TTHC) apart from
petitions about civil servants' conduct (staff); progress complaints concern the handling of
a procedure, so they count as TTHC.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Classification = Literal["tthc", "staff", "other"]


@dataclass(frozen=True)
class Category:
    code: str
    name_vi: str
    name_en: str
    classification: Classification


CATEGORIES: tuple[Category, ...] = (
    Category("procedure", "Thủ tục hành chính (TTHC)", "Administrative procedure", "tthc"),
    Category("progress", "Tiến độ giải quyết hồ sơ", "Handling progress", "tthc"),
    Category("staff_conduct", "Thái độ, hành vi của công chức", "Civil servants' conduct", "staff"),
    Category("other", "Khác", "Other", "other"),
)
BY_CODE = {c.code: c for c in CATEGORIES}
CATEGORY_CODES = tuple(BY_CODE)


def classification(code: str) -> Classification:
    return BY_CODE[code].classification
