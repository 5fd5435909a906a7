"""A briefing of the kind the read model fills, with Vietnamese names (for the export tests)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from services.reporting.domain.briefing import (
    Briefing,
    GroupLabel,
    IndicatorLine,
    Mover,
    RankingRow,
    UnitPage,
    WarningItem,
    WeakIndicator,
)

GROUPS = (
    GroupLabel("G1", "Công khai, minh bạch", "Publicity and transparency", Decimal(18)),
    GroupLabel("G2", "Tiến độ, kết quả giải quyết", "Progress and results", Decimal(20)),
    GroupLabel("G3", "Số hóa hồ sơ", "Digitisation", Decimal(22)),
    GroupLabel("G4", "Dịch vụ công trực tuyến", "Online services", Decimal(22)),
    GroupLabel("G5", "Mức độ hài lòng", "Satisfaction", Decimal(18)),
)

NAMES = [
    ("P01", "Thuế Thành phố Hà Nội"),
    ("P02", "Thuế Thành phố Hồ Chí Minh"),
    ("P03", "Thuế tỉnh Đắk Lắk"),
    ("P04", "Thuế tỉnh Khánh Hòa"),
    ("P05", "Thuế Thành phố Đà Nẵng"),
    ("P06", "Thuế tỉnh Quảng Ngãi"),
    ("P07", "Thuế tỉnh Thừa Thiên Huế"),
    ("P08", "Thuế tỉnh Lâm Đồng"),
    ("P09", "Thuế tỉnh Nghệ An"),
    ("P10", "Thuế tỉnh Hà Tĩnh"),
    ("P11", "Thuế tỉnh Bắc Ninh"),
    ("P12", "Thuế Thành phố Cần Thơ"),
]
GRADES = ["excellent", "good", "good", "fair", "fair", "fair", "average", "average", "weak", "good", "fair", "weak"]


def ranking_rows() -> list[RankingRow]:
    rows = []
    for i, ((code, name), grade) in enumerate(zip(NAMES, GRADES, strict=True)):
        total = Decimal("93.45") - Decimal(i) * Decimal("4.10")
        groups = {g.group_id: (g.max_points * total / 100).quantize(Decimal("0.01")) for g in GROUPS}
        rows.append(
            RankingRow(
                unit_code=code,
                unit_name=name,
                level="province",
                parent_code="CT",
                total=total,
                grade=grade,
                rank=i + 1,
                rank_delta=(2, -1, 0, None, 3, -4, 1, 0, -2, 1, 0, -1)[i],
                groups=groups,
                dossiers=12840 - i * 731,
                provisional=False,
            )
        )
    rows.append(
        RankingRow(
            unit_code="P34",
            unit_name='=HYPERLINK("http://evil","Thuế tỉnh Cao Bằng")',
            level="province",
            parent_code="CT",
            total=Decimal("100.00"),
            grade="excellent",
            rank=None,
            rank_delta=None,
            groups={g.group_id: g.max_points for g in GROUPS},
            dossiers=3,
            provisional=True,
        )
    )
    return rows


def indicator_lines() -> list[IndicatorLine]:
    return [
        IndicatorLine(
            "1.1",
            "TTHC được công bố đúng hạn",
            "procedures published on time",
            12,
            12,
            Decimal(100),
            Decimal("4.00"),
            Decimal("4.00"),
            True,
        ),
        IndicatorLine(
            "2.1",
            "Hồ sơ giải quyết trước hạn, đúng hạn",
            "dossiers handled early or on time",
            1187,
            1342,
            Decimal("88.45"),
            Decimal("8.85"),
            Decimal("10.00"),
            True,
        ),
        IndicatorLine(
            "2.2",
            "Thời gian giải quyết trung bình (ngày làm việc)",
            "average handling time (working days)",
            4023,
            1187,
            Decimal("3.39"),
            Decimal(0),
            Decimal(0),
            True,
        ),
        IndicatorLine(
            "3.3",
            "Tái sử dụng dữ liệu số hóa",
            "digitised data reused",
            402,
            1342,
            Decimal("29.96"),
            Decimal("1.20"),
            Decimal("4.00"),
            True,
        ),
        IndicatorLine(
            "4.2", "Thanh toán trực tuyến", "online payment", None, None, None, Decimal(0), Decimal("5.00"), False
        ),
    ]


def warnings() -> list[WarningItem]:
    due = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
    return [
        WarningItem("due_soon", "P03", "Hồ sơ đăng ký thuế lần đầu sắp đến hạn trả", "HS-0001", "CB-017", due),
        WarningItem("overdue", "P03", "Hồ sơ hoàn thuế quá hạn 3 ngày làm việc", "HS-0002", "CB-021", due),
        WarningItem("score_drop", "P09", "Tổng điểm giảm 6,20 điểm so với kỳ trước"),
        WarningItem("grade_change", "P09", "Xếp loại đổi từ Khá sang Trung bình"),
        WarningItem("feed_silent", "P12", "Nguồn dữ liệu một cửa không gửi sự kiện trong 26 giờ"),
    ]


def briefing(*, with_unit: bool = True) -> Briefing:
    rows = ranking_rows()
    dak_lak = rows[2]
    return Briefing(
        period="2026-10",
        methodology="tax-2025",
        scope_code="CT",
        scope_name="Cục Thuế",
        groups=GROUPS,
        ranking=rows,
        computed_at=datetime(2026, 11, 1, 1, 15, tzinfo=UTC),
        generated_at=datetime(2026, 11, 1, 2, 0, tzinfo=UTC),
        movers_up=[
            Mover("P05", "Thuế Thành phố Đà Nẵng", Decimal("70.10"), Decimal("77.05")),
            Mover("P01", "Thuế Thành phố Hà Nội", Decimal("90.00"), Decimal("93.45")),
        ],
        movers_down=[Mover("P09", "Thuế tỉnh Nghệ An", Decimal("66.85"), Decimal("60.65"))],
        weakest_indicators=[
            WeakIndicator("3.3", "Tái sử dụng dữ liệu số hóa", "digitised data reused", Decimal("61.40"), 31),
            WeakIndicator("2.1", "Hồ sơ giải quyết trước hạn, đúng hạn", "on time", Decimal("22.75"), 18),
        ],
        warnings=warnings(),
        unit=UnitPage(
            row=dak_lak,
            indicators=indicator_lines(),
            warnings=[w for w in warnings() if w.unit_code == "P03"],
            trend=[
                ("2026-05", Decimal("80.10")),
                ("2026-06", Decimal("82.40")),
                ("2026-07", Decimal("79.95")),
                ("2026-08", Decimal("83.30")),
                ("2026-09", Decimal("84.00")),
                ("2026-10", dak_lak.total),
            ],
        )
        if with_unit
        else None,
        notes=("Đơn vị có dưới 30 hồ sơ trong kỳ được tạm tính, không xếp hạng.",),
    )
