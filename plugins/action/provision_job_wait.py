# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Action plugin of provision_job_wait: a module cannot print while it runs, the controller can."""

from __future__ import annotations

import typing as t

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.l3metal.provision.plugins.module_utils._contract.jobs import FAILED, STATUSES
from ansible_collections.l3metal.provision.plugins.module_utils._receiver import (
    ReceiverError,
    StepClock,
    client_from_params,
    describe_event,
    receiver_argument_spec,
    wait_for_job,
)

display = Display()


def argument_spec() -> dict[str, dict[str, t.Any]]:
    spec = receiver_argument_spec()
    spec.update(
        job_id=dict(type='str', required=True),
        until=dict(type='list', elements='str', choices=list(STATUSES), default=['succeeded', 'failed']),
        timeout=dict(type='int', default=3600),
        fail_on_failed=dict(type='bool', default=True),
        show_progress=dict(type='bool', default=True),
    )
    return spec


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp: t.Any = None, task_vars: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
        result = super().run(tmp, task_vars)
        del tmp
        _validation, params = self.validate_argument_spec(argument_spec=argument_spec())
        job_id = params['job_id']
        host = (task_vars or {}).get('inventory_hostname', '')
        label = '%s: job %s' % (host, job_id) if host else 'job %s' % job_id

        clock = StepClock()

        def show(event: dict[str, t.Any]) -> None:
            if params['show_progress']:
                display.display('%s  %s  %s' % (label, event.get('at', ''), clock.describe(event)))

        try:
            if params['timeout'] < 0:
                raise ReceiverError('timeout: must be 0 or more seconds')
            outcome = wait_for_job(client_from_params(params), job_id, params['until'], params['timeout'], on_event=show)
        except ReceiverError as exc:
            result.update(failed=True, msg=str(exc), status_code=exc.status)
            return result

        job = outcome.job
        status = job.get('status')
        result.update(changed=False, status=status, failed_step=job.get('failed_step'), reason=job.get('reason'),
                      log_tail=job.get('log_tail'), job=job, events=outcome.events, elapsed=round(outcome.elapsed, 3))
        serial = job.get('server_serial')
        if not outcome.reached:
            last = job.get('last_progress') or {}
            progress = ', last progress: %s at %s' % (describe_event(last), last.get('at')) if last else ', no progress reported'
            if status in params['until'] or status not in ('queued', 'provisioning', 'succeeded', 'failed'):
                why = 'is %s and can no longer become %s' % (status, ' or '.join(params['until']))
            else:
                why = 'is still %s after %d s (deadline)' % (status, params['timeout'])
            result.update(failed=True, msg='job %s (serial %s) %s%s' % (job_id, serial, why, progress))
        elif status == FAILED and params['fail_on_failed']:
            reason = ': %s' % job['reason'] if job.get('reason') else ''
            hint = '; the last journal lines are in log_tail' if job.get('log_tail') else ''
            result.update(failed=True, msg='job %s (serial %s) failed at %s%s%s' % (job_id, serial, job.get('failed_step'), reason, hint))
        return result
