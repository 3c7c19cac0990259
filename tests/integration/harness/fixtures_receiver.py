# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures for the webhook receiver: a running receiver, a factory for variants (API token, TLS),
TLS files from a throw-away CA, and nginx as the reference static file server."""

from __future__ import annotations

import typing as t
from pathlib import Path

import pytest

from .nginx import Nginx
from .receiver import Receiver
from .tls import make_tls_files


@pytest.fixture
def receiver(tmp_path: Path) -> t.Iterator[Receiver]:
    """A receiver on 127.0.0.1:<free port>, no API token, plain HTTP; stopped after the test."""
    server = Receiver(tmp_path / 'receiver').start()
    yield server
    server.stop()


@pytest.fixture(scope='module')
def shared_receiver(tmp_path_factory: pytest.TempPathFactory) -> t.Iterator[Receiver]:
    """One receiver for the tests of a module that need no restart and use serials of their own
    (``harness.receiver.unique_serial``): saves a process start per test."""
    server = Receiver(tmp_path_factory.mktemp('shared-receiver')).start()
    yield server
    server.stop()


@pytest.fixture
def receiver_factory(tmp_path: Path) -> t.Iterator[t.Callable[..., Receiver]]:
    """``make(api_token=..., tls=(cert, key, ca), extra_args=[...])`` -> a started receiver."""
    started: list[Receiver] = []

    def make(**kwargs: t.Any) -> Receiver:
        server = Receiver(tmp_path / ('receiver-%d' % len(started)), **kwargs)
        started.append(server)
        return server.start()

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[str, str, str]:
    """(server certificate, key, CA certificate) for 127.0.0.1 / localhost, from a throw-away CA (``harness.tls``)."""
    files = make_tls_files(tmp_path / 'tls')
    return str(files.server_cert), str(files.server_key), str(files.ca_cert)


@pytest.fixture
def nginx_factory(tmp_path: Path) -> t.Iterator[t.Callable[[Path], Nginx]]:
    """``make(root)`` -> nginx serving ``root`` on 127.0.0.1:<free port>."""
    started: list[Nginx] = []

    def make(root: Path) -> Nginx:
        server = Nginx(root, tmp_path / ('nginx-%d' % len(started)))
        started.append(server)
        return server.start()

    yield make
    for server in started:
        server.stop()
