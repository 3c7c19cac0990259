# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""How a job went, from its document and, only when needed, its status history."""

from __future__ import annotations

import pytest

from ansible_collections.l3metal.provision.plugins.module_utils._job_history import job_outcome


def never() -> list[str]:
    raise AssertionError('the events were read although the job document tells')


@pytest.mark.parametrize('job, outcome', [
    ({'status': 'queued', 'failed_step': None}, None),
    ({'status': 'provisioning', 'failed_step': None}, None),
    ({'status': 'succeeded', 'failed_step': None}, 'succeeded'),
    ({'status': 'failed', 'failed_step': 'bootloader-linux.service'}, 'failed'),
    ({'status': 'complete', 'failed_step': 'redfish-media-boot'}, 'failed'),
])
def test_the_document_tells(job, outcome):
    assert job_outcome(job, never) == outcome


@pytest.mark.parametrize('statuses, outcome', [
    (['queued', 'provisioning', 'succeeded', 'complete'], 'succeeded'),
    (['queued', 'provisioning', 'complete'], 'completed'),   # ESXi: closed after the installer's reboot
    (['queued', 'complete'], 'abandoned'),                    # replaced or given up before the boot
    (['queued', 'provisioning', 'failed', 'complete'], 'failed'),
])
def test_a_complete_job_needs_its_history(statuses, outcome):
    assert job_outcome({'status': 'complete', 'failed_step': None}, lambda: statuses) == outcome
