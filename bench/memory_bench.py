"""Peak memory (VmHWM) of one gunicorn worker serving /healthz, against a bare Flask app.

Starts gunicorn with one sync worker for each app in turn, sends the same requests to both,
and reads the worker's peak resident set size from /proc.

    python bench/memory_bench.py [--requests 3000]
"""

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).with_name("gunicorn")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children(pid):
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def peak_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM")


def measure(app_spec, requests, env, cwd):
    port = free_port()
    proc = subprocess.Popen(
        [str(GUNICORN), "--workers", "1", "--bind", f"127.0.0.1:{port}", app_spec],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}/healthz"
        for _ in range(100):
            try:
                urllib.request.urlopen(url, timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)

        def hit(_):
            urllib.request.urlopen(url, timeout=5).read()

        started = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(hit, range(requests)))
        elapsed = time.perf_counter() - started
        (worker,) = children(proc.pid)
        return peak_kib(worker), requests / elapsed
    finally:
        proc.terminate()
        proc.wait(10)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    env = dict(
        os.environ,
        PORTAL_DATABASE_URL=f"sqlite:///{tempfile.mkdtemp()}/m.db",
        PORTAL_SECRET_KEY="bench",
        PORTAL_LOG_LEVEL="WARNING",
    )
    bare_kib, bare_rate = measure("bare_app:app", args.requests, env, ROOT / "bench")
    portal_kib, portal_rate = measure("portal:create_app()", args.requests, env, ROOT)
    print(f"bare Flask worker: peak {bare_kib / 1024:.1f} MiB ({bare_rate:.0f} req/s from Python clients)")
    print(f"portal worker:     peak {portal_kib / 1024:.1f} MiB ({portal_rate:.0f} req/s)")
    print(f"ratio portal / bare: memory {portal_kib / bare_kib:.2f}, rate {portal_rate / bare_rate:.2f}")


if __name__ == "__main__":
    main()
