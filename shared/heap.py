"""The process heap and the cyclic garbage collector.

Everything alive once a process has started (modules, the app, its settings, pools, caches'
scaffolding: hundreds of thousands of objects) lives as long as the process. Left in the
collector's oldest generation, every full collection walks all of it, with the event loop
stopped, in the middle of whatever request or message triggered it. Frozen, it is out of the
collector's reach (still freed by reference counting if it ever dies). Measured: the scoring
API's read tail under 20 readers, full-collection pauses ≈ 150 ms → ≤ 25 ms; under a live stream
(py-spy --native), 5–13 % of the workers' and the gateway's CPU in ``gc_collect_main``
(docs/performance.md, session 7).
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> None:
    """Move every object alive now out of the collector's generations (call once, after start-up).

    Garbage first: a cycle frozen while unreachable would never be freed."""
    gc.collect()
    gc.freeze()
