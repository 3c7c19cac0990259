#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: esxi_install_wait
short_description: Wait for an ESXi install to end - the installed host's report or the installer's reboot, whichever comes first
version_added: 0.1.0
description:
  - Follows a job in the webhook receiver and, at the same time, the server's power state through its BMC, until
    the job has a reported outcome (V(succeeded) or V(failed)), the power state reads V(Off) (the installer's reboot),
    or O(timeout) seconds pass. RV(ended_by) says which.
  - Both at once, because either signal may not come - an installed host that cannot reach the receiver sends no
    report, and many BMCs show no V(Off) during a warm reboot. The role M(l3metal.provision.provision_esxi) ejects the
    media when the reboot shows and then waits for the report; a report that comes first ends the wait at once.
  - Each round long-polls the receiver for O(interval) seconds (a report ends it at once) and then reads the power
    state once, so an V(Off) lasting longer than a round is seen. A BMC error is retried the next round; five in a row
    fail the task.
  - The BMC connection is what the play's C(module_defaults) give the Redfish modules (C(group/l3metal.provision.redfish)
    or C(l3metal.provision.redfish_boot)), or O(bmc). The receiver connection is this task's own options (action group
    C(l3metal.provision.receiver)).
  - This is an action plugin; it runs on the controller, which must reach both.
  - Passing O(timeout) is not a failure; RV(ended_by) is then V(timeout) and the caller decides.
author:
  - l3metal.provision contributors (@l3metal)
extends_documentation_fragment:
  - l3metal.provision.attributes
  - ansible.builtin.action_common_attributes.flow
  - l3metal.provision.receiver
attributes:
  check_mode:
    support: full
    details: Waiting only reads, so it runs in check mode too.
  diff_mode:
    support: none
  action:
    support: full
    details: Runs on the controller.
  async:
    support: none
  bypass_host_loop:
    support: none
options:
  job_id:
    description: The job to follow (RV(l3metal.provision.provision_job#module:job_id)).
    type: str
    required: true
  timeout:
    description: Seconds to wait at most.
    type: int
    default: 3600
  watch_power:
    description: Also end the wait when the power state reads V(Off). V(false) waits for the report only.
    type: bool
    default: true
  bmc:
    description:
      - The BMC connection, with the options of the Redfish modules (C(baseuri), C(username), C(password),
        C(validate_certs), C(ca_path), C(timeout), C(retries), C(system_id), C(manager_id)).
      - Default - the C(module_defaults) of the play for C(group/l3metal.provision.redfish).
    type: dict
  interval:
    description: Seconds per round; the power state is read once a round.
    type: float
    default: 2.0
  show_progress:
    description: Print each event of the job as it arrives.
    type: bool
    default: true
seealso:
  - module: l3metal.provision.provision_job_wait
  - module: l3metal.provision.redfish_boot
'''

EXAMPLES = r'''
- name: Wait for the report or the reboot
  l3metal.provision.esxi_install_wait:
    job_id: "{{ job.job_id }}"
    timeout: 3600
  delegate_to: localhost
  register: install

- name: The reboot showed first; eject, then wait for the report alone
  l3metal.provision.esxi_install_wait:
    job_id: "{{ job.job_id }}"
    timeout: 1800
    watch_power: false
  delegate_to: localhost
  when: install.ended_by == 'power_off'
'''

RETURN = r'''
ended_by:
  description:
    - V(report) (the job reached V(succeeded) or V(failed)), V(power_off), V(timeout), or V(closed) (the job was
      completed meanwhile).
  returned: success
  type: str
  sample: report
status:
  description: The job's status when the wait ended.
  returned: success
  type: str
  sample: succeeded
job:
  description: The receiver's job document when the wait ended (see RV(l3metal.provision.provision_job#module:job)).
  returned: success
  type: dict
power_state:
  description: The last power state read; V(null) when none was read.
  returned: success
  type: str
  sample: "On"
power_off_after:
  description: Seconds until the power state read V(Off); V(null) otherwise.
  returned: success
  type: float
elapsed:
  description: Seconds waited.
  returned: success
  type: float
events:
  description: The job's events seen while waiting, oldest first (as RV(l3metal.provision.provision_job_wait#module:events)).
  returned: success
  type: list
  elements: dict
bmc_errors:
  description: BMC errors that were retried.
  returned: success
  type: list
  elements: str
'''
