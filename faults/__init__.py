"""The faults suite: the cache module under crashes, hangs, failovers, partitions, OOM and bad
credentials, on local Redis 7 servers it starts itself; ``./scripts/faults`` prints the table
(and writes it to ``docs/reliability.md``), ``tests/test_faults.py`` runs a short version.

    load.py    bounded clients through Cache / AsyncCache, acknowledged writes recorded
    rows.py    one fault per row, each on a LocalRedis group of its own
    report.py  the table, the machine it ran on, the checks, docs/reliability.md
"""
