# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures for the Redfish unit tests: a replay BMC per vendor, a client that does not sleep, and a module run."""

from __future__ import annotations

import json
import typing as t

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.l3metal.provision.plugins.module_utils._redfish.connection import ConnectionOptions, RedfishClient, redfish_policy
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
        client = RedfishClient(ConnectionOptions(**settings), policy=redfish_policy(retries, sleep=sleeps)).open()
        opened.append(client)
        return client

    yield open_client
    for client in opened:
        client.close()


class ModuleRun(t.NamedTuple):
    failed: bool
    result: dict[str, t.Any]
    requests: list[t.Any]  # what the replay BMC received during this run

    @property
    def sent(self) -> list[tuple[str, str]]:
        """(method, last path segment) of every request of the run, in order."""
        return [(r.method, r.path.rstrip('/').rsplit('/', 1)[-1]) for r in self.requests]


@pytest.fixture
def run_module(capsys: pytest.CaptureFixture[str]) -> t.Callable[..., ModuleRun]:
    """Run a Redfish module's main() in-process against a replay BMC, as a play would (one task)."""

    def run(module: t.Any, bmc: ReplayBMC, check_mode: bool = False, **args: t.Any) -> ModuleRun:
        params: dict[str, t.Any] = dict(baseuri=bmc.url, username='admin', password='secret', timeout=5)
        params.update(args)
        if check_mode:
            params['_ansible_check_mode'] = True
        mark = len(bmc.requests)
        with patch_module_args(params), pytest.raises(SystemExit) as exit_info:
            module.main()
        result = json.loads(capsys.readouterr().out)
        assert (exit_info.value.code != 0) == bool(result.get('failed')), result
        return ModuleRun(bool(result.get('failed')), result, bmc.requests[mark:])

    return run
