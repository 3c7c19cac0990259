#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: provision_job_wait
short_description: Wait for a provisioning job to succeed or fail, showing the node's progress as it comes
version_added: 0.1.0
description:
  - Follows a job in the webhook receiver until its status is one of O(until) (by default V(succeeded) or V(failed)),
    with a deadline of O(timeout) seconds.
  - Each progress event the node reports (for example C(partition.service started)) is printed as soon as it arrives;
    the receiver answers long polls, so there is no polling delay.
  - When the job failed, the task fails (unless O(fail_on_failed=false)) and returns the failed step, the reason and
    the last journal lines the node sent (RV(log_tail)).
  - When the deadline passes, the task fails and reports the last known status and progress.
  - This is an action plugin. It runs on the controller and talks to the receiver from there, so O(url) must be
    reachable from the controller.
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
    details: Runs on the controller, which prints the progress as it arrives.
  async:
    support: none
  bypass_host_loop:
    support: none
options:
  job_id:
    description: The job to wait for (RV(l3metal.provision.provision_job#module:job_id)).
    type: str
    required: true
  until:
    description:
      - Statuses to wait for. The wait ends as soon as the job has one of them.
    type: list
    elements: str
    choices: [queued, provisioning, succeeded, failed, complete]
    default: [succeeded, failed]
  timeout:
    description:
      - Seconds to wait at most. Installing an OS takes a while; count the boot, the image download and the writes.
    type: int
    default: 3600
  fail_on_failed:
    description:
      - Fail the task when the job ends V(failed) (and V(failed) was waited for). With V(false), the task succeeds
        and the caller looks at RV(status) and RV(failed_step).
    type: bool
    default: true
  show_progress:
    description:
      - Print each event as it arrives (status changes and C(step started/done)).
    type: bool
    default: true
seealso:
  - module: l3metal.provision.provision_job
'''

EXAMPLES = r'''
- name: Wait for the installation (prints each step as the node reports it)
  l3metal.provision.provision_job_wait:
    url: http://127.0.0.1:8080
    job_id: "{{ job.job_id }}"
    timeout: 2700
  register: outcome

- name: Wait, then decide in the play
  l3metal.provision.provision_job_wait:
    url: http://127.0.0.1:8080
    job_id: "{{ job.job_id }}"
    fail_on_failed: false
  register: outcome

- name: Show the node's last journal lines
  ansible.builtin.debug:
    msg: "{{ outcome.log_tail }}"
  when: outcome.status == 'failed'
'''

RETURN = r'''
status:
  description: The job's status when the wait ended.
  returned: always
  type: str
  sample: succeeded
failed_step:
  description: What failed (a unit name such as V(bootloader-linux.service), or what the controller set), else V(null).
  returned: always
  type: str
  sample: bootloader-linux.service
reason:
  description: Why it failed, if the node or the controller said.
  returned: always
  type: str
log_tail:
  description: The last journal lines the node sent with its failure, else V(null).
  returned: always
  type: str
job:
  description: The receiver's job document when the wait ended (see RV(l3metal.provision.provision_job#module:job)).
  returned: always
  type: dict
events:
  description: The job's events seen while waiting, oldest first (C(type) V(status) or V(progress)).
  returned: always
  type: list
  elements: dict
  sample:
    - {seq: 4, at: '2025-11-03T20:31:02.120Z', type: progress, source: node, step: partition.service, state: started}
elapsed:
  description: Seconds waited.
  returned: always
  type: float
  sample: 412.5
'''
