# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The long poll's ``wait`` as ReceiverClient.events sends it: the receiver reads seconds as up to three digits and at
most six decimals, so a wait's last round (a few milliseconds left before its deadline) must not be sent as 0.0270894
or 1e-05 (answered 400, which failed esxi_install_wait at its deadline instead of ending it)."""

from __future__ import annotations

import re
import typing as t

import pytest

from ansible_collections.l3metal.provision.plugins.module_utils._receiver import ReceiverClient

# the receiver's rule for seconds in a query, written out again (receiver/l3metal_receiver/api.py, _SECONDS)
RECEIVER_SECONDS = re.compile(r'^[0-9]{1,3}(?:\.[0-9]{1,6})?\Z')


class QueryRecorder(ReceiverClient):
    def __init__(self) -> None:
        super().__init__('http://127.0.0.1:9')
        self.queries: list[t.Mapping[str, t.Any]] = []

    def request(self, method: str, path: str, body: t.Any = None, query: t.Mapping[str, t.Any] | None = None,
                timeout: float | None = None, raw: t.Any = None, raw_headers: t.Mapping[str, str] | None = None) -> dict[str, t.Any]:
        self.queries.append(dict(query or {}))
        return {'job': {}, 'events': [], 'last_seq': 0}


@pytest.mark.parametrize('wait', [0.0270894, 1e-05, 0.0, 2.0, 1.9999999, 60.0])
def test_wait_is_sent_as_the_receiver_reads_seconds(wait):
    client = QueryRecorder()
    client.events('job-1', 3, wait=wait)
    [query] = client.queries
    assert query['after'] == 3
    assert RECEIVER_SECONDS.match(query['wait']), query
    assert abs(float(query['wait']) - wait) <= 0.0005
