# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""provision_job_info refuses bad input before it sends anything (the URL points at a closed port)."""

from __future__ import annotations

import pytest

from ansible_collections.l3metal.provision.plugins.modules import provision_job_info

CLOSED = 'http://127.0.0.1:9'


@pytest.mark.parametrize('args, message', [
    ({}, 'one of the following is required: server_serial, job_id'),
    ({'server_serial': 'XF-1', 'limit': 0}, 'limit: 0 is not between 1 and 100'),
    ({'server_serial': 'bad serial!'}, "server_serial: 'bad serial!' is not a serial number"),
    ({'server_serial': 'XF-1', 'recipe': {'task_target': 'install-linux.target', 'oci_url': 'nope'}}, 'oci_url'),
    ({'job_id': 'j', 'recipe': {'task_target': 'x.target'}}, 'parameters are mutually exclusive: job_id|recipe'),
])
def test_bad_input_fails_without_a_request(run_module, args, message):
    outcome = run_module(provision_job_info, dict(args, url=CLOSED))
    assert outcome.failed and message in outcome.result['msg'], outcome.result
    assert 'cannot reach' not in outcome.result['msg']


def test_unreachable_receiver_is_named(run_module):
    outcome = run_module(provision_job_info, {'url': CLOSED, 'server_serial': 'XF-1'})
    assert outcome.failed and outcome.result['msg'].startswith('cannot reach the webhook receiver at %s/api/v1/jobs' % CLOSED)
