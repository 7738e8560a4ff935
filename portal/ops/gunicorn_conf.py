"""Gunicorn settings the portal needs beside the command line's (``gunicorn -c
python:portal.ops.gunicorn_conf``): each worker's start-up objects are kept out of the cyclic
garbage collector's scans, and when a worker exits, its live figures are dropped from the
Prometheus multiprocess folder (its counters stay counted)."""

import gc


def post_worker_init(worker):
    """The worker has built the application. What exists now (the modules, the app, its
    mappers, routes and compiled templates: about 200,000 objects) lives as long as the worker,
    yet every full collection of the cyclic garbage collector walked all of it again: 115 ms,
    once in about 1,500 API retirements, measured in one process (with the middle generation's
    collections, 0.1–0.25 ms per retirement on average; 0.013–0.017 ms frozen). ``gc.freeze``
    moves it out of the collector's generations; reference counting still frees whatever of it
    is dropped, only cycles among it are left alone (start-up objects are not dropped). What
    requests make is collected as before."""
    from sqlalchemy.orm import configure_mappers

    configure_mappers()  # built at the first query otherwise: part of what start-up made
    gc.freeze()


def child_exit(server, worker):
    from portal.ops.metrics import multiprocess_dir

    if multiprocess_dir():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
