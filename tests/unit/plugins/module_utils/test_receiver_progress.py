# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""How provision_job_wait prints the node's progress: each finished step with its duration, a failure with the step it
interrupted.  The events are a failed job's as the receiver stored them on a real boot (issue 12's bad-oci run)."""

from __future__ import annotations

from ansible_collections.l3metal.provision.plugins.module_utils._receiver import StepClock, event_time

EVENTS = [
    {'seq': 84, 'at': '2026-12-03T14:27:16.101Z', 'type': 'status', 'source': 'user', 'status': 'queued'},
    {'seq': 85, 'at': '2026-12-03T14:28:35.868Z', 'type': 'status', 'source': 'node', 'status': 'provisioning'},
    {'seq': 86, 'at': '2026-12-03T14:28:35.868Z', 'type': 'progress', 'source': 'node', 'step': 'provision-dispatcher.service', 'state': 'done'},
    {'seq': 87, 'at': '2026-12-03T14:28:37.474Z', 'type': 'progress', 'source': 'node', 'step': 'partition.service', 'state': 'started'},
    {'seq': 88, 'at': '2026-12-03T14:28:52.903Z', 'type': 'progress', 'source': 'node', 'step': 'partition.service', 'state': 'done'},
    {'seq': 89, 'at': '2026-12-03T14:28:54.589Z', 'type': 'progress', 'source': 'node', 'step': 'image-linux.service', 'state': 'started'},
    {'seq': 90, 'at': '2026-12-03T14:29:08.225Z', 'type': 'status', 'source': 'node', 'status': 'failed'},
]


def test_steps_get_their_durations_and_a_failure_the_step_it_stopped():
    clock = StepClock()
    assert [clock.describe(event) for event in EVENTS] == [
        'status queued (controller)',
        'status provisioning (node)',
        'provision-dispatcher.service done',           # its start was before the first report
        'partition.service started',
        'partition.service done (15.4 s)',
        'image-linux.service started',
        'status failed (node) (image-linux.service ran 13.6 s)',
    ]


def test_events_without_a_time_stamp_are_described_as_before():
    clock = StepClock()
    assert clock.describe({'type': 'progress', 'step': 'a.service', 'state': 'started'}) == 'a.service started'
    assert clock.describe({'type': 'progress', 'step': 'a.service', 'state': 'done', 'at': 'yesterday'}) == 'a.service done'
    assert event_time({'at': '2026-12-03T14:28:35.868Z'}) == 1796308115.868
    assert event_time({}) is None
