"""How the exports name things for people: grades, warning kinds, periods, numbers, times.

Vietnamese first (the exports are read by the tax administration); the English words are kept
beside them where a bilingual heading wants them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

from services.reporting.domain import periods

# Vietnam keeps one offset all year (no daylight saving): a fixed zone needs no tz database.
VIETNAM_TIME = timezone(timedelta(hours=7), "ICT")

GRADE_VI = {
    "excellent": "Xuất sắc",
    "good": "Tốt",
    "fair": "Khá",
    "average": "Trung bình",
    "weak": "Yếu",
}
GRADE_EN = {"excellent": "Excellent", "good": "Good", "fair": "Fair", "average": "Average", "weak": "Weak"}

WARNING_KIND_VI = {
    "due_soon": "Hồ sơ sắp đến hạn",
    "overdue": "Hồ sơ quá hạn",
    "score_drop": "Giảm điểm",
    "grade_change": "Thay đổi xếp loại",
    "feed_silent": "Nguồn dữ liệu ngừng gửi",
}
WARNING_KIND_EN = {
    "due_soon": "Due soon",
    "overdue": "Overdue",
    "score_drop": "Score drop",
    "grade_change": "Grade change",
    "feed_silent": "Silent feed",
}
WARNING_KIND_ORDER = ("overdue", "due_soon", "score_drop", "grade_change", "feed_silent")

LEVEL_VI = {"central": "Cục Thuế", "province": "Thuế tỉnh, thành phố", "local": "Thuế cơ sở"}

_ROMAN = {1: "I", 2: "II", 3: "III", 4: "IV"}


def grade_vi(grade: str) -> str:
    """The Vietnamese grade word (xếp loại) of a grade code; an unknown code is shown as given."""
    return GRADE_VI.get(grade, grade)


def grade_en(grade: str) -> str:
    return GRADE_EN.get(grade, grade)


def warning_kind_vi(kind: str) -> str:
    return WARNING_KIND_VI.get(kind, kind)


def period_vi(period: str) -> str:
    """``2026-10`` → "tháng 10/2026", ``2026-Q3`` → "quý III/2026", ``2026`` → "năm 2026"."""
    if m := periods.match_label(periods.MONTH, period):
        return f"tháng {int(m[2])}/{m[1]}"
    if m := periods.match_label(periods.QUARTER, period):
        return f"quý {_ROMAN[int(m[2])]}/{m[1]}"
    if m := periods.match_label(periods.YEAR, period):
        return f"năm {m[1]}"
    if m := periods.match_label(periods.RANGE, period):
        (y1, m1, d1), (y2, m2, d2) = m[1].split("-"), m[2].split("-")
        return f"từ ngày {d1}/{m1}/{y1} đến ngày {d2}/{m2}/{y2}"
    return period


def plain_number(value: Decimal | int | float) -> str:
    """A number as machines read it: ``.`` decimal, no thousands separator, never an exponent."""
    if isinstance(value, Decimal):
        text = format(value, "f")
        return "0" if text in ("-0", "-0.0", "-0.00") else text
    return str(value)


def number_vi(value: Decimal | int | None, places: int = 2) -> str:
    """A number as Vietnamese readers write it: ``.`` between thousands, ``,`` before decimals."""
    if value is None:
        return "—"
    # Half-up, as methodology.md's r2 (Decimal's own formatting rounds half-even: 80.125 → 80.12).
    exact = Decimal(value).quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP)
    text = f"{exact:,.{places}f}" if places else f"{int(exact):,d}"
    return text.replace(",", "\u2009").replace(".", ",").replace("\u2009", ".")


def count_vi(value: Decimal | int | float | None) -> str:
    """A count or a sum as written: "1.187"; a fractional one keeps its decimals: "4.026,5"."""
    if value is None:
        return "—"
    exact = Decimal(str(value))
    if exact == exact.to_integral_value():
        return number_vi(int(exact), 0)
    places = min(max(-exact.normalize().as_tuple().exponent, 1), 2)  # type: ignore[operator]
    return number_vi(exact, places)


def ratio_vi(ratio: Decimal | None, numerator: Decimal | int | float | None, denominator: int | None) -> str:
    """The ratio scoring shows beside an indicator: a percentage ``r2(100 × n / d)`` ("88,45%"),
    or, for an average such as 2.2's working days, ``n / d`` itself ("3,39")."""
    if ratio is None:
        return "—"
    if numerator is not None and denominator:
        average = Decimal(str(numerator)) / Decimal(denominator)
        if abs(ratio - average) <= Decimal("0.01") and abs(ratio - 100 * average) > Decimal("0.01"):
            return number_vi(ratio)
    return number_vi(ratio) + "%"


def signed_vi(value: Decimal | int | None, places: int = 2) -> str:
    """A change with its sign: "+3,25", "−1,50" (true minus sign), "0"."""
    if value is None:
        return "—"
    if value == 0:
        return "0"
    sign = "+" if value > 0 else "\u2212"
    return sign + number_vi(abs(Decimal(value)), places)


def datetime_vi(moment: datetime | None) -> str:
    """ "08:15 ngày 29/11/2026 (giờ Việt Nam)"; a naive time is taken as UTC."""
    if moment is None:
        return "chưa có số liệu"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    local = moment.astimezone(VIETNAM_TIME)
    return f"{local:%H:%M} ngày {local:%d/%m/%Y} (giờ Việt Nam)"


def date_vi(moment: datetime | None) -> str:
    if moment is None:
        return "—"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    local = moment.astimezone(VIETNAM_TIME)
    return f"{local:%d/%m/%Y %H:%M}"


def provisional_vi(provisional: bool) -> str:
    return "Có" if provisional else "Không"
