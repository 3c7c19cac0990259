# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Action plugin of esxi_install_wait: one loop on the controller that follows the receiver and reads the BMC.

A module gets the connection options of one action group; this wait needs two.  The receiver's come as the task's
own options (group ``l3metal.provision.receiver``); the BMC's are the task's ``module_defaults`` for
``group/l3metal.provision.redfish`` (or ``l3metal.provision.redfish_boot``), as every Redfish module of the play gets
them, unless the ``bmc`` option gives them.
"""

from __future__ import annotations

import typing as t

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.l3metal.provision.plugins.module_utils._esxi_wait import wait_for_install
from ansible_collections.l3metal.provision.plugins.module_utils._receiver import (
    ReceiverError,
    StepClock,
    client_from_params,
    receiver_argument_spec,
)
from ansible_collections.l3metal.provision.plugins.module_utils._redfish.boot import BootManager
from ansible_collections.l3metal.provision.plugins.module_utils._redfish.connection import ConnectionOptions, RedfishClient
from ansible_collections.l3metal.provision.plugins.module_utils._redfish.errors import RedfishError
from ansible_collections.l3metal.provision.plugins.module_utils._redfish.module_support import redfish_argument_spec

display = Display()
REDFISH_DEFAULTS = ('group/l3metal.provision.redfish', 'l3metal.provision.redfish_boot')


def argument_spec() -> dict[str, dict[str, t.Any]]:
    spec = receiver_argument_spec()
    spec.update(
        job_id=dict(type='str', required=True),
        timeout=dict(type='int', default=3600),
        watch_power=dict(type='bool', default=True),
        bmc=dict(type='dict'),
        interval=dict(type='float', default=2.0),
        show_progress=dict(type='bool', default=True),
    )
    return spec


class PowerReader:
    """Reads the system's PowerState, keeping one Redfish session open; a failed read closes it (the next opens anew)."""

    def __init__(self, options: ConnectionOptions) -> None:
        self.options = options
        self.client: RedfishClient | None = None
        self.boot: BootManager | None = None

    def __call__(self) -> str | None:
        if self.client is None or self.boot is None:
            self.client = RedfishClient(self.options).open()
            self.boot = BootManager(self.client)
        try:
            self.boot.refresh()
            return self.boot.power_state
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        client, self.client, self.boot = self.client, None, None
        if client is not None:
            client.close()


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = False

    def _bmc_params(self, explicit: dict[str, t.Any] | None) -> dict[str, t.Any]:
        """The BMC connection: ``bmc``, else the module_defaults the play gives the Redfish modules."""
        if explicit is None:
            explicit = {}
            for entry in self._task.module_defaults or []:
                for key in REDFISH_DEFAULTS:
                    if isinstance(entry, dict) and isinstance(entry.get(key), dict):
                        explicit.update(entry[key])
            explicit = self._templar.template(explicit)
        if not explicit.get('baseuri'):
            raise ValueError('bmc: no BMC connection - set module_defaults for group/l3metal.provision.redfish (baseuri, username, '
                             'password, ...) as for the Redfish modules, or give bmc, or watch_power=false')
        checked = ArgumentSpecValidator(redfish_argument_spec()).validate(explicit)
        if checked.error_messages:
            raise ValueError('bmc: %s' % '; '.join(checked.error_messages))
        return checked.validated_parameters

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

        reader: PowerReader | None = None
        try:
            if params['timeout'] < 0 or params['interval'] <= 0:
                raise ValueError('timeout must be 0 or more seconds and interval more than 0')
            if params['watch_power']:
                reader = PowerReader(ConnectionOptions.from_params(self._bmc_params(params['bmc'])))
            outcome = wait_for_install(client_from_params(params), job_id, params['timeout'], reader, params['interval'], on_event=show)
        except (ReceiverError, RedfishError, ValueError) as exc:
            result.update(failed=True, msg=str(exc))
            return result
        finally:
            if reader is not None:
                reader.close()
        job = outcome.job
        result.update(changed=False, ended_by=outcome.ended_by, status=job.get('status'), job=job, power_state=outcome.power_state,
                      power_off_after=outcome.power_off_after, elapsed=round(outcome.elapsed, 3), bmc_errors=outcome.power_errors,
                      events=outcome.events)
        if outcome.ended_by == 'timeout':
            result['msg'] = ('job %s (serial %s) is still %s after %d s: no report from the host%s'
                             % (job_id, job.get('server_serial'), job.get('status'), params['timeout'],
                                ' and no power-off seen (last power state %s)' % outcome.power_state if params['watch_power'] else ''))
        return result
