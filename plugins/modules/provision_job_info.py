#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: provision_job_info
short_description: Read a server's provisioning jobs from the webhook receiver, with how each went
version_added: 0.1.0
description:
  - Lists the newest jobs of O(server_serial) (or reads the job O(job_id)) in the webhook receiver, each with its
    RV(jobs[].outcome) - V(succeeded) (the node reported success), V(failed) (the node or the controller reported a
    failure), V(completed) (closed after the boot without a report, as an ESXi install ends), V(abandoned) (closed
    before it was booted), or V(null) while it is still going.
  - With O(recipe), tells whether the server's last finished job ran that recipe well (RV(provisioned)), so a playbook
    can leave a server alone that already is what it asks for.
author:
  - l3metal.provision contributors (@l3metal)
extends_documentation_fragment:
  - l3metal.provision.attributes
  - l3metal.provision.attributes.INFO_MODULE
  - l3metal.provision.receiver
options:
  server_serial:
    description: Serial number of the server whose jobs to list.
    type: str
  job_id:
    description: Read only this job.
    type: str
  recipe:
    description:
      - A recipe (mapping, or JSON/YAML text) without a C(callback) block, compared with the recipe of the last finished
        job (after normalization, as M(l3metal.provision.provision_job) compares recipes). Needs O(server_serial).
    type: raw
  limit:
    description: How many of the newest jobs to list (1 to 100). Each complete job costs one more request (its events).
    type: int
    default: 10
seealso:
  - module: l3metal.provision.provision_job
  - module: l3metal.provision.provision_job_wait
'''

EXAMPLES = r'''
- name: Has this server already been installed with this recipe?
  l3metal.provision.provision_job_info:
    url: http://127.0.0.1:8080
    server_serial: "{{ server_serial }}"
    recipe: "{{ recipe }}"
  delegate_to: localhost
  register: history

- name: Install only when it has not
  ansible.builtin.include_role:
    name: l3metal.provision.provision_node
  when: not history.provisioned
'''

RETURN = r'''
jobs:
  description:
    - The jobs, newest first, as the receiver lists them (C(job_id), C(status), C(failed_step), C(reason),
      C(server_serial), C(created_at), C(last_update), C(recipe_sha256), C(media_url)), each with C(outcome).
    - With O(job_id), that one job with its C(recipe) and C(log_tail).
  returned: success
  type: list
  elements: dict
  sample:
    - {job_id: 0b6d7ad4-5f3c-4d8e-9a51-2f4c1f0e9d21, status: complete, failed_step: null, outcome: succeeded,
       server_serial: XF-12345ABC, recipe_sha256: d917..., created_at: '2025-11-03T20:30:00.000Z'}
  contains:
    job_id:
      description: The job's id.
      type: str
    status:
      description: The receiver's status (V(queued), V(provisioning), V(succeeded), V(failed), V(complete)).
      type: str
    failed_step:
      description: The unit or controller stage that failed, else V(null).
      type: str
    outcome:
      description: How the job ended (V(succeeded), V(failed), V(completed), V(abandoned)), or V(null) while it is still going.
      type: str
    recipe_sha256:
      description: Digest of the job's normalized recipe.
      type: str
active:
  description: The server's job that is not complete yet, else V(null).
  returned: success
  type: dict
last_finished:
  description: The newest job whose outcome is V(succeeded), V(failed) or V(completed) (abandoned jobs are skipped), else V(null).
  returned: success
  type: dict
recipe_sha256:
  description: Digest of the normalized O(recipe), comparable with C(recipe_sha256) of the jobs; V(null) without O(recipe).
  returned: success
  type: str
provisioned:
  description:
    - True when RV(last_finished) ended well (V(succeeded) or V(completed)) and, when O(recipe) is given, ran that recipe.
  returned: success
  type: bool
'''

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.l3metal.provision.plugins.module_utils._job_history import job_with_outcome, server_history
from ansible_collections.l3metal.provision.plugins.module_utils._contract.recipe import HAS_JSONSCHEMA, JSONSCHEMA_IMPORT_ERROR, RecipeError
from ansible_collections.l3metal.provision.plugins.module_utils._receiver import ReceiverError, client_from_params, receiver_argument_spec


def main() -> None:
    argument_spec = receiver_argument_spec()
    argument_spec.update(
        server_serial=dict(type='str'),
        job_id=dict(type='str'),
        recipe=dict(type='raw'),
        limit=dict(type='int', default=10),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        required_one_of=[('server_serial', 'job_id')],
        mutually_exclusive=[('server_serial', 'job_id'), ('job_id', 'recipe')],
        supports_check_mode=True,
    )
    params = module.params
    if not 1 <= params['limit'] <= 100:
        module.fail_json(msg='limit: %d is not between 1 and 100' % params['limit'])
    if params['recipe'] is not None and not HAS_JSONSCHEMA:
        module.fail_json(msg=missing_required_lib('jsonschema'), exception=str(JSONSCHEMA_IMPORT_ERROR))
    try:
        client = client_from_params(params)
        if params['job_id']:
            job = job_with_outcome(client, params['job_id'])
            finished = job if job['outcome'] in ('succeeded', 'failed', 'completed') else None
            module.exit_json(changed=False, jobs=[job], active=None if job.get('status') == 'complete' else job, last_finished=finished,
                             recipe_sha256=None, provisioned=bool(finished and finished['outcome'] != 'failed'))
        history = server_history(client, params['server_serial'], params['recipe'], params['limit'])
    except RecipeError as exc:
        module.fail_json(msg=exc.summary(), errors=exc.as_dicts())
    except ReceiverError as exc:
        module.fail_json(msg=str(exc), status_code=exc.status)
    module.exit_json(changed=False, jobs=history.jobs, active=history.active, last_finished=history.last_finished,
                     recipe_sha256=history.recipe_sha256, provisioned=history.provisioned)


if __name__ == '__main__':
    main()
