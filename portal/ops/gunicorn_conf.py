"""Gunicorn settings the portal needs beside the command line's (``gunicorn -c
python:portal.ops.gunicorn_conf``): when a worker exits, its live figures are dropped from the
Prometheus multiprocess folder (its counters stay counted)."""


def child_exit(server, worker):
    from portal.ops.metrics import multiprocess_dir

    if multiprocess_dir():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
