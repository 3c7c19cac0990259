# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures for the Redfish unit tests: a replay BMC per vendor and a client that does not sleep."""

from __future__ import annotations

import typing as t

import pytest

from ansible_collections.l3metal.provision.plugins.module_utils._redfish.connection import ConnectionOptions, RedfishClient, RetryPolicy
from ansible_collections.l3metal.provision.tests.unit.plugins.module_utils._redfish.replay_bmc import ReplayBMC


class Sleeps(list):
    """Records the delays a RetryPolicy asked for instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def replay() -> t.Iterator[t.Callable[..., ReplayBMC]]:
    started: list[ReplayBMC] = []

    def start(fixture: str, **kwargs: t.Any) -> ReplayBMC:
        bmc = ReplayBMC(fixture, **kwargs).start()
        started.append(bmc)
        return bmc

    yield start
    for bmc in started:
        bmc.stop()


@pytest.fixture
def connect(sleeps: Sleeps) -> t.Iterator[t.Callable[..., RedfishClient]]:
    """Open a client on a replay BMC (closed at the end of the test); options override the defaults."""
    opened: list[RedfishClient] = []

    def open_client(bmc: ReplayBMC, retries: int = 3, **options: t.Any) -> RedfishClient:
        settings = dict(baseuri=bmc.url, username='admin', password='secret', timeout=5, retries=retries)
        settings.update(options)
        client = RedfishClient(ConnectionOptions(**settings), policy=RetryPolicy(retries=retries, sleep=sleeps)).open()
        opened.append(client)
        return client

    yield open_client
    for client in opened:
        client.close()
