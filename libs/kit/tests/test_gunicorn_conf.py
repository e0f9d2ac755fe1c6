"""The shared gunicorn settings, as gunicorn's own configuration reads them."""

from __future__ import annotations

from gunicorn.config import Config

from linli_kit import gunicorn_conf


def _as_gunicorn_reads_them() -> Config:
    config = Config()
    for name, value in vars(gunicorn_conf).items():
        if name in config.settings:
            config.set(name, value)
    return config


def test_a_master_opens_no_control_socket_for_another_master_to_take() -> None:
    # gunicorn 25+ would open $HOME/.gunicorn/gunicorn.ctl in every master: one path for all five.
    assert _as_gunicorn_reads_them().control_socket_disable is True


def test_the_keep_alive_and_threads_are_what_the_clients_are_tuned_against() -> None:
    config = _as_gunicorn_reads_them()
    assert config.worker_class_str == "gthread"
    assert config.keepalive == gunicorn_conf.keepalive == 5
