"""The SQI simulator: a plausible tax administration feeding SQI through its public API only.

- :mod:`sim.world` — units, ~350 local offices (Thuế cơ sở), officers, procedures, traits
- :mod:`sim.behaviour` — volumes, filing seasonality, channel mix, probabilities
- :mod:`sim.generate` — the event stream (NDJSON lines), day by day, reproducible from the seed
- :mod:`sim.feedback` — citizens' ratings and petitions (sent through the feedback API)
- :mod:`sim.answer_key` — what the simulator intended, per unit and month
- :mod:`sim.send` — the HTTP sender (units, keys, event batches, feedback)
- :mod:`sim.live` — live activity at a rate
- :mod:`sim.cli` — ``sqi simulate``
"""
