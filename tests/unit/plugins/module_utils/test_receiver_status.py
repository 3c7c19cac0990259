# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""ensure_status when the job's node reports while the controller moves the job (issue 17): a refused change carries
the job as it is now, whether the refusal came from the job read first or from the receiver itself, and any other
error stays what it was."""

from __future__ import annotations

import typing as t

import pytest

from ansible_collections.l3metal.provision.plugins.module_utils._receiver import ReceiverClient, ReceiverError, TransitionRefused, ensure_status

JOB = {'job_id': 'job-1', 'server_serial': 'XF-1', 'status': 'provisioning', 'failed_step': None, 'reason': None}
SUCCEEDED = dict(JOB, status='succeeded')
# the problem document the receiver answers a refused status change with (api.py, StatusRejected)
REFUSED = {'title': 'Conflict', 'status': 409, 'code': 'transition_refused', 'job_status': 'succeeded',
           'detail': 'job job-1: a job that is succeeded cannot become failed (allowed from succeeded: complete)'}


class FakeClient(ReceiverClient):
    """The job API with scripted answers: ``reads`` are returned by get_job in turn, ``change`` is what set_status does."""

    def __init__(self, reads: t.Sequence[dict[str, t.Any] | ReceiverError], change: dict[str, t.Any] | ReceiverError) -> None:
        super().__init__('http://127.0.0.1:9')
        self.reads = list(reads)
        self.change = change
        self.changes: list[tuple[str, str]] = []

    def get_job(self, job_id: str) -> dict[str, t.Any]:
        answer = self.reads.pop(0)
        if isinstance(answer, ReceiverError):
            raise answer
        return dict(answer)

    def set_status(self, job_id: str, status: str, failed_step: str | None = None, reason: str | None = None) -> dict[str, t.Any]:
        self.changes.append((job_id, status))
        if isinstance(self.change, ReceiverError):
            raise self.change
        return dict(self.change)


def test_a_job_read_as_succeeded_refuses_the_mark_and_carries_the_job():
    client = FakeClient([SUCCEEDED], {})
    with pytest.raises(TransitionRefused) as caught:
        ensure_status(client, 'failed', 'job-1', failed_step='provision-wait')
    assert caught.value.job == SUCCEEDED and caught.value.status is None
    assert 'a job that is succeeded cannot become failed' in str(caught.value)
    assert client.changes == []  # nothing was sent


def test_a_report_between_the_read_and_the_change_is_read_back():
    """The node's success lands after ensure_status read the job (provisioning) but before its change: the receiver
    answers 409 transition_refused, and the error carries the job read again, with the node's outcome."""
    client = FakeClient([JOB, SUCCEEDED], ReceiverError('POST .../status: HTTP 409: ' + REFUSED['detail'], 409, REFUSED))
    with pytest.raises(TransitionRefused) as caught:
        ensure_status(client, 'failed', 'job-1', failed_step='provision-wait')
    assert caught.value.job == SUCCEEDED and caught.value.status == 409 and caught.value.problem == REFUSED
    assert client.changes == [('job-1', 'failed')] and client.reads == []


@pytest.mark.parametrize('change, reads', [
    pytest.param(ReceiverError('cannot reach the webhook receiver at http://127.0.0.1:9/api/v1/jobs/job-1/status: refused'), [JOB],
                 id='unreachable'),
    pytest.param(ReceiverError('POST .../status: HTTP 409: another conflict', 409, {'code': 'job_mismatch'}), [JOB], id='other-409'),
    pytest.param(ReceiverError('POST .../status: HTTP 409: ' + REFUSED['detail'], 409, REFUSED),
                 [JOB, ReceiverError('cannot reach the webhook receiver')], id='refused-then-unreachable'),
])
def test_other_errors_of_the_change_stay_what_they_were(change, reads):
    client = FakeClient(reads, change)
    with pytest.raises(ReceiverError) as caught:
        ensure_status(client, 'failed', 'job-1', failed_step='provision-wait')
    assert caught.value is change and not isinstance(caught.value, TransitionRefused)


def test_a_job_the_node_failed_keeps_its_own_failure():
    """state=failed for a job its node failed is no change: nothing is sent, the node's step stays."""
    failed = dict(JOB, status='failed', failed_step='image-linux.service', reason='digest mismatch')
    client = FakeClient([failed], {})
    assert ensure_status(client, 'failed', 'job-1', failed_step='provision-wait') == (False, failed, failed)
    assert client.changes == []
