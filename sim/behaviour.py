"""How taxpayers and offices behave: volumes, seasonality, channels, probabilities.

Pure functions of a date and an office's traits; the generator draws from them. Numbers are
plausible, not measured: they exist so that scores differ for real, explainable reasons.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache

import holidays

from sim.world import Office, Procedure

#: Dossiers per million inhabitants per working day at scale 1. With ~4.6 events per dossier
#: this gives the whole country about 1.05 million events a month.
DOSSIERS_PER_MILLION_WD = 105.0

#: Share of a working day's volume that arrives online on a Sunday or holiday.
OFF_DAY_ONLINE_SHARE = 0.04

#: Base share of online submissions by the online level the procedure offers.
ONLINE_SHARE = {"full": 0.82, "partial": 0.45, "none": 0.0}

# Monthly declarations (Khai thuế GTGT tháng) are due on the 20th: the crowd comes just before it.
_MONTHLY_DECLARATION = ("T.KT.01",)
_PIT_FINALISATION = ("T.KT.02",)  # quyết toán TNCN: March–April, due 30 April
_PIT_REFUND = ("T.HT.03",)  # hoàn thuế TNCN follows the finalisation


@lru_cache(maxsize=32)
def tet_days(year: int) -> frozenset[date]:
    """The Lunar New Year holidays (Tết Nguyên đán) of ``year`` according to ``holidays``."""
    vn = holidays.country_holidays("VN", years=year)
    return frozenset(d for d, name in vn.items() if "Lunar New Year" in name)


@lru_cache(maxsize=4096)
def tet_factor(d: date) -> float:
    """Quiet in the week before Tết and slow in the week after."""
    days = tet_days(d.year) | tet_days(d.year + 1) | tet_days(d.year - 1)
    if not days:
        return 1.0
    for k in range(1, 8):
        if d + timedelta(days=k) in days:
            return 0.55
        if d - timedelta(days=k) in days:
            return 0.5
    return 1.0


def weekday_factor(d: date) -> float:
    """Mondays are busy, Fridays a little quieter; a make-up Saturday is a slow day."""
    return (1.15, 1.0, 1.0, 1.0, 0.92, 0.8, 0.8)[d.weekday()]


def procedure_factor(code: str, d: date) -> float:
    """Filing seasonality of one procedure on day ``d`` (mùa kê khai)."""
    dom, month = d.day, d.month
    if code in _MONTHLY_DECLARATION:
        f = 0.5 if dom <= 9 else 1.0 if dom <= 15 else 2.6 if dom <= 20 else 0.45
        # Quarterly declarations are due on the last day of the month after the quarter.
        if month in (1, 4, 7, 10) and dom >= 20:
            f += 1.6
        return f
    if code in _PIT_FINALISATION:
        return 4.0 if month in (3, 4) else 0.35
    if code in _PIT_REFUND:
        return 2.5 if month in (4, 5, 6) else 0.6
    # Everyone else also comes a little more often around the 20th, when they pay anyway.
    return 1.2 if 16 <= dom <= 20 else 1.0


def procedure_mix(procs: list[Procedure]) -> list[float]:
    """Base share of each procedure in an office's volume (declarations dominate)."""
    base = {"Khai thuế": 6.0, "Đăng ký thuế": 2.0, "Hóa đơn": 2.5, "Lệ phí trước bạ": 2.0, "Hoàn thuế": 0.8}
    return [base.get(p.field, 0.5) for p in procs]


def online_share(office: Office, proc: Procedure) -> float:
    share = ONLINE_SHARE[proc.online_level_offered]
    if proc.code in _MONTHLY_DECLARATION + _PIT_FINALISATION:
        share = min(0.98, share + 0.14)
    return share * (0.45 if office.low_online else 1.0)


def on_time_probability(office: Office, slow_officer: bool) -> float:
    p = 0.955
    if office.backlog_prone:
        p -= 0.2
    if slow_officer:
        p -= 0.12
    return p


def digitise_probability(office: Office) -> float:
    return 0.45 if office.slow_digitise else 0.88


def result_digitized_probability(office: Office) -> float:
    return 0.55 if office.slow_digitise else 0.93


def sync_profile(office: Office) -> tuple[float, int, int]:
    """(probability of ever syncing, min lag s, max lag s) of an office's dossiers."""
    if office.sync_lag:
        return 0.82, 6 * 3600, 4 * 86400
    return 0.975, 30, 1800
