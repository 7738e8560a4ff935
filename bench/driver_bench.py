"""What sending statements costs the client and the server, by how they are sent (PostgreSQL).

Two trivial statements on one connection, in a transaction, through psycopg as the portal uses
it (binary results, a cursor kept per statement): one after the other (two round trips), sent
together in the driver's pipeline mode (one round trip), and folded into one statement. Prints
the CPU each way costs per pair, in the client (this process) and in the server (the
connection's backend, from ``/proc``), the median of ``--rounds`` alternated rounds. The
server's CPU is read from ``/proc/<pid>/stat``, so the server must run on this machine.

    python bench/driver_bench.py [--url postgresql+psycopg://…/bench] [--pairs 5000] [--rounds 3]

Nothing is written: the database is only read.
"""

import argparse
import os
import statistics
import time

import psycopg
from common import PG_DEFAULT, create_missing

FIRST, SECOND = "SELECT %(n)s::int + 1", "SELECT %(n)s::int * 2"
BOTH = "SELECT %(n)s::int + 1, (SELECT %(n)s::int * 2)"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default=PG_DEFAULT)
    parser.add_argument("--pairs", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    create_missing(args.url)
    connection = psycopg.connect(args.url.replace("postgresql+psycopg://", "postgresql://"))
    (backend,) = connection.execute("SELECT pg_backend_pid()").fetchone()
    connection.rollback()
    first, second, both = (connection.cursor(binary=True) for _ in range(3))

    def server_seconds() -> float:
        with open(f"/proc/{backend}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def one_after_the_other(n):
        first.execute(FIRST, {"n": n})
        first.fetchall()
        second.execute(SECOND, {"n": n})
        second.fetchall()

    def together(n):
        with connection.pipeline():
            first.execute(FIRST, {"n": n})
            second.execute(SECOND, {"n": n})
        first.fetchall()
        second.fetchall()

    def folded(n):
        both.execute(BOTH, {"n": n})
        both.fetchall()

    ways = (one_after_the_other, together, folded)
    figures = {way.__name__: ([], []) for way in ways}
    for _round in range(args.rounds):
        for way in ways:
            for n in range(200):  # prepared statements, the cursor's loaders
                way(n)
            connection.rollback()
            client, server = time.process_time(), server_seconds()
            for n in range(args.pairs):
                way(n)
            connection.rollback()
            mine, theirs = figures[way.__name__]
            mine.append((time.process_time() - client) / args.pairs * 1e6)
            theirs.append((server_seconds() - server) / args.pairs * 1e6)
    for name, (mine, theirs) in figures.items():
        print(
            f"{name.replace('_', ' ')}: client {statistics.median(mine):.1f} µs,"
            f" server {statistics.median(theirs):.1f} µs of CPU per pair of statements"
        )


if __name__ == "__main__":
    main()
