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
# gunicorn 25+ opens a control socket for `gunicornc` at one path per user ($HOME/.gunicorn/gunicorn.ctl)
# unless told otherwise: every master of the platform (five on one machine) took it from the one
# before, so gunicornc reached whichever started last. Processes are run by honcho, compose or
# Kubernetes here, never by gunicornc, so none is opened.
control_socket_disable = True


def child_exit(server, worker):  # noqa: ANN001, ANN201 - gunicorn hook signature
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
