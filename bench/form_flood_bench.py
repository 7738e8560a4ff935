"""``/healthz`` while anonymous clients flood the sign-in and sign-up forms with huge bodies.

The portal runs under gunicorn (2 sync workers, as ``scripts/serve`` runs it). Baseline:
``/healthz`` p50 with nothing else running. Figure: ``/healthz`` p50 while 8 clients (processes)
keep posting url-encoded bodies of 6,000,000 bytes and 600,000 fields to ``/login`` and
``/signup``, which anyone may call. Both come from the same run; the target is a p50 under load
below 50 ms. The flood's answers are counted by status (``reset`` when the portal closed the
connection before the client had sent the whole body).

``--small`` adds a control in the same run: the same clients posting a 3-byte form instead, the
floor any flood of requests reaches on the machine (the CPU the clients and the refused
requests themselves take); an oversized body should cost no more than that.

    python bench/form_flood_bench.py [--seconds 20] [--clients 8] [--small]   (temporary SQLite)
"""

import argparse
import http.client
import multiprocessing
import statistics
import tempfile
import time
import urllib.parse
from collections import Counter
from pathlib import Path

from common import fresh_database, serve

#: 600,000 fields in 6,000,000 bytes.
FIELDS = 600_000
BODY = b"a=1234567&" * FIELDS
PATHS = ("/login", "/signup")
TARGET_MS = 50


def _flood(host, port, body, deadline, outcomes):
    """One client: post ``body`` again and again until ``deadline``; its answers by status."""
    seen = Counter()
    n = 0
    while time.monotonic() < deadline:
        connection = http.client.HTTPConnection(host, port, timeout=120)
        try:
            connection.request(
                "POST",
                PATHS[n % len(PATHS)],
                body=body,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            response = connection.getresponse()
            response.read()
            seen[str(response.status)] += 1
        except OSError:  # reset or broken pipe: refused before the body was read
            seen["reset"] += 1
        finally:
            connection.close()
        n += 1
    outcomes.put(dict(seen))


def probe(host, port, seconds):
    """Latencies (ms) of sequential ``GET /healthz`` for ``seconds``, a new connection each."""
    times = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.perf_counter()
        connection = http.client.HTTPConnection(host, port, timeout=120)
        connection.request("GET", "/healthz")
        response = connection.getresponse()
        response.read()
        connection.close()
        assert response.status == 200, response.status
        times.append((time.perf_counter() - started) * 1000)
    return times


def summary(times):
    times = sorted(times)
    return statistics.median(times), times[int(len(times) * 0.95)], len(times)


def flooded(host, port, body, clients, seconds):
    """``/healthz`` latencies while ``clients`` processes post ``body`` for ``seconds``, and the
    flood's answers by status."""
    outcomes = multiprocessing.Queue()
    deadline = time.monotonic() + seconds
    flood = [
        multiprocessing.Process(target=_flood, args=(host, port, body, deadline, outcomes))
        for _ in range(clients)
    ]
    for process in flood:
        process.start()
    time.sleep(min(1.0, seconds / 10))  # the flood under way
    times = probe(host, port, deadline - time.monotonic())
    answers = Counter()
    for _ in flood:
        answers.update(outcomes.get())
    for process in flood:
        process.join()
    return times, dict(sorted(answers.items()))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--baseline-seconds", type=float, default=5)
    parser.add_argument("--small", action="store_true", help="also flood with 3-byte forms (control)")
    args = parser.parse_args()

    url = fresh_database("sqlite")
    workdir = Path(tempfile.mkdtemp(prefix="floodbench-"))
    print(f"server log: {workdir / 'server.log'}")
    with serve(url, workdir) as base:
        parts = urllib.parse.urlsplit(base)
        host, port = parts.hostname, parts.port
        probe(host, port, 1)  # warm-up
        baseline = summary(probe(host, port, args.baseline_seconds))
        times, answers = flooded(host, port, BODY, args.clients, args.seconds)
        loaded = summary(times)
        if args.small:
            small_times, small_answers = flooded(host, port, b"a=1", args.clients, args.seconds)
            small = summary(small_times)

    def line(label, figures):
        p50, p95, n = figures
        print(f"/healthz {label:<34} p50 {p50:7.1f} ms, p95 {p95:7.1f} ms ({n} requests)")

    print(
        f"flood: {args.clients} clients × {args.seconds:.0f} s posting {len(BODY):,} bytes / "
        f"{FIELDS:,} fields to {' and '.join(PATHS)}; answers {answers}"
    )
    line("baseline (no load):", baseline)
    line("under the oversized-form flood:", loaded)
    if args.small:
        print(f"control flood: the same clients posting 3 bytes; answers {small_answers}")
        line("under the 3-byte-form flood:", small)
    verdict = "met" if loaded[0] < TARGET_MS else "MISSED"
    print(
        f"ratio p50 under load / baseline: {loaded[0] / baseline[0]:.1f}; target p50 < {TARGET_MS} ms: {verdict}"
    )
    if args.small:
        print(f"ratio p50 oversized flood / 3-byte flood: {loaded[0] / small[0]:.2f}")


if __name__ == "__main__":
    main()
