"""The benchmark harness: one command, every backend, the real `chappyd`.

    .venv/bin/python -m bench.harness --backend sqlite|postgres|redis \
        --suite backlog|pool|mixed|io|rss|start|push|latency|all [--repeats N] [--quick]

It starts its own throwaway store (an SQLite file, a PostgreSQL cluster with stock
settings, a redis-server with AOF everysec), pushes with QueueManager.push_many, runs the
venv's `chappyd` and measures from outside: the jobs (bench/jobs.py) append timestamped
records to a file, memory comes from /proc, store sizes from the store. Each suite prints
a Markdown table: the median of the repeats, the slowest in brackets.
"""
