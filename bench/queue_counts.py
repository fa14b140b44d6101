#!/usr/bin/env python3
"""What GET /api/queues costs on a big SQLite queue: 1,000,000 jobs (10,000 queued, 100 running,
the rest finished over a week), then the three count statements the SQLite driver runs.

Usage: bench/queue_counts.py build/creatord
"""
import random
import sqlite3
import subprocess
import sys
import tempfile
import time

folder = tempfile.mkdtemp(prefix="creatord-counts-")
subprocess.run([sys.argv[1], "migrate", "--data-dir", folder], check=True, capture_output=True)
db = sqlite3.connect(f"{folder}/creatord.db")
now = int(time.time() * 1000)
rows = []
for i in range(1_000_000):
    running = 10_000 <= i < 10_100
    if i < 10_000 or running:
        state, finished = ("running" if running else "queued"), None
    else:
        state, finished = random.choice(["succeeded"] * 9 + ["failed"]), now - random.randint(0, 7 * 24 * 3600 * 1000)
    rows.append(("generate", random.choice(["generate", "email", "default"]), "{}", state, now, 1000, now, now,
                 finished, "w" if running else None, now + 30000 if running else None))
db.executemany("INSERT INTO jobs (kind, queue, payload, state, run_at, timeout_ms, created_at, updated_at, "
               "finished_at, lease_owner, lease_expires_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
db.commit()
db.execute("ANALYZE")
# The statements of SqliteStore::queue_counts (src/store/sqlite/sqlite_queue.cpp).
statements = [
    ("SELECT queue, state, COUNT(*) FROM jobs INDEXED BY jobs_runnable "
     "WHERE state IN ('queued', 'scheduled', 'retrying') GROUP BY queue, state", ()),
    ("SELECT queue, state, COUNT(*) FROM jobs INDEXED BY jobs_leases WHERE state = 'running' GROUP BY queue, state", ()),
    ("SELECT queue, state, COUNT(*) FROM jobs INDEXED BY jobs_finished "
     "WHERE finished_at IS NOT NULL AND finished_at >= ? GROUP BY queue, state", (now - 3600 * 1000,)),
]
best = None
for _ in range(5):
    t = time.perf_counter()
    for sql, args in statements:
        db.execute(sql, args).fetchall()
    took = (time.perf_counter() - t) * 1000
    best = took if best is None else min(best, took)
full = time.perf_counter()
db.execute("SELECT queue, state, COUNT(*) FROM jobs NOT INDEXED GROUP BY queue, state").fetchall()
scan = (time.perf_counter() - full) * 1000
print(f"queue counts on 1,000,000 jobs: {best:.1f} ms (reference, a full-table count: {scan:.1f} ms; ratio {best / scan:.3f})")
subprocess.run(["rm", "-rf", folder])
