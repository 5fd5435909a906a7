"""Citizens' ratings (đánh giá mức độ hài lòng) and petitions (phản ánh, kiến nghị).

They enter SQI through the feedback API, not as events, so they are items for the sender:
``{"kind": "rating" | "petition" | "reaction", "t": local seconds, "client": address, "via": …, "body": …}``.

Two ways in (``via``):

- ``"import"`` — most ratings: collected "elsewhere" (the national portal's own form) and imported
  by the province's dossier system with its API key (``POST /api/v1/ratings/import``), carrying
  their own ``rated_at`` (the simulated time ``t``). A simulated country sends thousands, far more
  than the citizen endpoint's per-address limit allows.
- ``"citizen"`` — a small share of ratings (needs the dossier's rating code, which only
  ``POST /api/v1/events`` gives back; the sender fills ``rating_code`` in at send time), every
  petition and reaction (the only way in for them), and the rating burst. The gateway allows
  10 citizen writes a minute per address, so a back-fill generates at most
  ``Config.citizen_writes`` of them (the burst aside) and the sender paces them; SQI dates them
  at arrival, not at ``t``.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from sim.answer_key import DossierFacts
from sim.clock import DAY
from sim.world import Office

if TYPE_CHECKING:
    from sim.generate import Generator

_COMMENTS = {
    "very_satisfied": ["Cán bộ hướng dẫn nhiệt tình", "Giải quyết nhanh, đúng hẹn", ""],
    "satisfied": ["Ổn", "Thủ tục rõ ràng", ""],
    "dissatisfied": ["Trễ hẹn trả kết quả", "Phải đi lại nhiều lần", "Không được hướng dẫn rõ"],
}
#: (title, content, category) — categories as the feedback service classifies them (5.1).
_PETITION_TOPICS = [
    ("Trễ hạn giải quyết hồ sơ", "Hồ sơ của tôi đã quá ngày hẹn trả nhưng chưa có kết quả.", "progress"),
    ("Thái độ công chức", "Cán bộ tiếp nhận thiếu nhiệt tình, hướng dẫn không rõ ràng.", "staff_conduct"),
    ("Yêu cầu bổ sung không rõ", "Tôi được yêu cầu bổ sung giấy tờ nhưng không rõ cần những gì.", "procedure"),
    ("Lỗi nộp hồ sơ trực tuyến", "Cổng dịch vụ công báo lỗi khi tôi nộp hồ sơ và thanh toán.", "other"),
]
#: The origin of imported ratings (the national portal's rating form).
IMPORT_ORIGIN = "national_portal"


def _client(rng: random.Random) -> str:
    return f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def _level(rng: random.Random, late: bool) -> str:
    r = rng.random()
    if late:
        return "dissatisfied" if r < 0.5 else ("satisfied" if r < 0.85 else "very_satisfied")
    return "very_satisfied" if r < 0.55 else ("satisfied" if r < 0.95 else "dissatisfied")


def _criteria(gen: Generator, rng: random.Random, level: str) -> dict[str, int]:
    centre = {"very_satisfied": 3, "satisfied": 2, "dissatisfied": 1}[level]
    return {c: max(1, min(3, centre + rng.choice((-1, 0, 0, 0, 1)))) for c in gen.world.criteria}


def rating_item(
    gen: Generator, f: DossierFacts, o: Office, rng: random.Random, tc: int, late: bool
) -> dict[str, Any] | None:
    t = tc + rng.randint(600, 3 * DAY)
    if t > gen.cfg.t_end:
        return None
    level = _level(rng, late)
    via = "citizen" if rng.random() < gen.cfg.citizen_rating_share and gen.take_citizen_write("rating") else "import"
    fb = gen.key.feedback[o.code]
    fb["ratings"] += 1
    fb["ratings_" + level] += 1
    fb["ratings_" + via] += 1
    if via == "import":
        # Imported with its own rated_at: SQI counts it from t on. A citizen's rating is dated by
        # SQI at arrival, so the key cannot place it in the simulated months.
        f.rated_dissatisfied = level == "dissatisfied"
        f.rated_at = t
    return {
        "kind": "rating",
        "t": t,
        "client": _client(rng),
        "via": via,
        "source": o.source,
        "body": {
            "dossier_id": f.dossier_id,
            "level": level,
            "criteria": _criteria(gen, rng, level),
            "comment": rng.choice(_COMMENTS[level]),
        },
    }


def petition_items(gen: Generator, f: DossierFacts, o: Office, rng: random.Random, tc: int) -> list[dict[str, Any]]:
    """A petition about the dossier, maybe a reaction to its answer, maybe a second petition.

    Every draw is made whatever the citizen-write budget, so the budget never shifts the stream;
    an item over the budget is left out (and out of the key). SQI dates a petition at arrival,
    so the key never marks the dossier ``petitioned`` for the simulated months.
    """
    t = tc + rng.randint(3600, 5 * DAY)
    if t > gen.cfg.t_end:
        return []
    title, content, category = _PETITION_TOPICS[rng.randrange(len(_PETITION_TOPICS))]
    contact = f"0{rng.randint(900000000, 999999999)}"
    r_reaction, r_again = rng.random(), rng.random()
    client, client_reaction, client_again = _client(rng), _client(rng), _client(rng)
    if not gen.take_citizen_write():
        return []
    ref = f"pet:{f.dossier_id}"
    body = {
        "unit_code": o.code,
        "dossier_id": f.dossier_id,
        "category": category,
        "title": title,
        "content": f"{content} Mã hồ sơ {f.dossier_id}.",
        "contact": contact,
    }
    fb = gen.key.feedback[o.code]
    fb["petitions"] += 1
    items: list[dict[str, Any]] = [
        {"kind": "petition", "t": t, "client": client, "via": "citizen", "ref": ref, "body": body}
    ]
    if r_reaction < 0.3 and gen.take_citizen_write():
        items.append(
            {
                "kind": "reaction",
                "t": t + DAY,
                "client": client_reaction,
                "via": "citizen",
                "ref": ref,
                "body": {"reaction": "dislike" if r_reaction < 0.2 else "like"},
            }
        )
    if r_again < 0.25 and t + 2 * DAY <= gen.cfg.t_end and gen.take_citizen_write():
        # Kiến nghị lại: the same person about the same dossier, again.
        fb["petitions"] += 1
        fb["petitions_again"] += 1
        items.append(
            {
                "kind": "petition",
                "t": t + 2 * DAY,
                "client": client_again,
                "via": "citizen",
                "ref": ref + ":2",
                "again_of": ref,
                "body": {**body, "title": "Phản ánh lại: " + title},
            }
        )
    return items


def burst_items(gen: Generator, pool: list[tuple[int, str]], n: int) -> list[dict[str, Any]]:
    """A burst of very_satisfied ratings from one client address within minutes (bought score)."""
    from sim.generate import BURST_CLIENT

    rng = random.Random(f"burst:{gen.cfg.seed}")
    picks = sorted(rng.sample(pool, min(n, len(pool))))
    t0 = max(t for t, _ in picks) + 3600
    fb = gen.key.feedback[gen.burst_office]
    fb["ratings_burst"] += len(picks)
    return [
        {
            "kind": "rating",
            "t": min(gen.cfg.t_end, t0 + i * 20),
            "client": BURST_CLIENT,
            "via": "citizen",
            "burst": True,
            "body": {
                "dossier_id": did,
                "level": "very_satisfied",
                "criteria": dict.fromkeys(gen.world.criteria, 3),
                "comment": "Rất hài lòng",
            },
        }
        for i, (_, did) in enumerate(picks)
    ]
