"""gunicorn settings shared by every web process: `gunicorn -c python:linli_kit.gunicorn_conf ...`."""

import os

workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "4"))
timeout = int(os.environ.get("WEB_TIMEOUT", "30"))
graceful_timeout = 20
keepalive = 5
# No --preload: every worker imports the app itself, so no engine or broker connection is shared
# across a fork (the Database class also re-creates its engine if it finds itself in a new pid).
preload_app = False
accesslog = None


def child_exit(server, worker):  # noqa: ANN001, ANN201 - gunicorn hook signature
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
