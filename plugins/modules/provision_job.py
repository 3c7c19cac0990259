#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: provision_job
short_description: Register a provisioning job with the webhook receiver and move it through its life
version_added: 0.1.0
description:
  - With O(state=present), makes sure the server O(server_serial) has an active job for O(recipe) in the webhook
    receiver, creating one when needed. A new job comes with its per-job O(recipe) callback block (receiver URL, job id,
    token, serial) and the recipe to put on the task medium, ready for M(l3metal.provision.task_iso).
  - The per-job token is returned B(only by the run that creates the job) (or reissues the token); the receiver never
    shows it again. A later run with an equivalent recipe finds the active job and reports C(changed=false) with
    RV(token), RV(callback) and RV(recipe) set to V(null); the task medium written by the first run already holds the token.
    If that medium was lost while the job is still V(queued), set O(reissue_token=true) to get a new token (the old one
    stops working).
  - With O(state=provisioning), O(state=failed) or O(state=complete), moves the job (O(job_id), or the active job of
    O(server_serial)) to that status. The receiver checks the transition; a complete job cannot go back.
    V(complete) is the end of a job; its per-job media URLs stop working and the serial may get a new job.
  - Recipes are compared after normalization, so key order, size and type-code case or base64 line breaks do not matter.
author:
  - l3metal.provision contributors (@l3metal)
extends_documentation_fragment:
  - l3metal.provision.attributes
  - l3metal.provision.receiver
attributes:
  check_mode:
    support: full
    details: Reads the job from the receiver and predicts the change; nothing is created or changed.
  diff_mode:
    support: full
    details: Shows the job's status (and id) before and after.
options:
  state:
    description:
      - V(present) registers a job for O(recipe) unless an active job with an equivalent recipe exists.
      - V(provisioning) marks the job provisioning (the node has been booted from the media).
        A job the node has already taken to V(succeeded) or V(failed) (it reported before this task ran) is left
        as it is (C(changed=false)).
      - V(failed) marks the job failed from the controller's side (for example the BMC refused the boot), with O(failed_step).
        A job that has already failed (its node reported it) is left as it is (C(changed=false)) and keeps its own failed step and reason.
        A job that has V(succeeded) or is V(complete) cannot become failed; the task fails, and its result holds the
        job as it is (RV(job), RV(status)), so that a play that gave up waiting just before the node reported can go on
        with the node's outcome (as role C(l3metal.provision.provision_wait) does).
      - V(complete) closes the job once media are ejected; with O(server_serial) and no active job, nothing changes.
    type: str
    choices: [present, provisioning, failed, complete]
    default: present
  server_serial:
    description:
      - Serial number of the server; the node reports under it. Letters, digits and C(._:-), at most 128 characters.
      - Required with O(state=present); with other states, give it or O(job_id).
    type: str
  job_id:
    description:
      - The job to move (other states than V(present)). Without it, the active job of O(server_serial) is moved.
    type: str
  recipe:
    description:
      - The recipe (a mapping, or JSON/YAML text) without a C(callback) block; validated with the collection's schema
        before anything is sent. Required with O(state=present).
    type: raw
  attached:
    description:
      - Payloads that will be given to M(l3metal.provision.task_iso) as separate files instead of inside the recipe
        (V(user_data), V(unattend_xml), V(ks_cfg)), so that rules needing them are satisfied.
    type: list
    elements: str
    default: []
  public_url:
    description:
      - Base URL the node and its BMC use to reach the receiver, put into the callback block and the media URL.
      - Default is the receiver's C(--public-url), else O(url). Set it when the controller reaches the receiver at
        another address than the servers do (for example V(http://10.1.1.10:8080) while O(url) is V(http://127.0.0.1:8080)).
    type: str
  reissue_token:
    description:
      - With O(state=present) and an existing, still V(queued) job with an equivalent recipe, replace its token and
        return the new one (C(changed=true)). Fails for a job that is provisioning, because its node holds the token.
    type: bool
    default: false
  force:
    description:
      - With O(state=present) and an active job with a B(different) recipe, mark that job complete and create a new one.
        Without it, that case is an error. The node of the old job can no longer report.
    type: bool
    default: false
  failed_step:
    description:
      - What failed, with O(state=failed), for example V(redfish-boot). Letters, digits and C(:_.@-).
    type: str
  reason:
    description:
      - One line on why, with O(state=failed).
    type: str
notes:
  - The registered result of a run that created the job holds its token (in RV(token), RV(callback) and RV(recipe)).
    The token only lets a node report for this job until it is complete. Do not print the result with C(debug).
seealso:
  - module: l3metal.provision.provision_job_wait
  - module: l3metal.provision.task_iso
  - ref: l3metal.provision.webhook_receiver
    description: The role that runs the receiver.
'''

EXAMPLES = r'''
- name: Register the job (the token comes back only when the job is created)
  l3metal.provision.provision_job:
    url: http://127.0.0.1:8080
    public_url: http://10.1.1.10:8080
    server_serial: "{{ serial }}"
    recipe: "{{ recipe }}"
  delegate_to: localhost
  register: job

- name: Build the task medium into the job's media directory (only when the job is new)
  l3metal.provision.task_iso:
    dest: "{{ job.media_dir }}/task.iso"
    recipe: "{{ job.recipe }}"
  delegate_to: localhost
  when: job.token is not none

- name: The node has been booted from the media
  l3metal.provision.provision_job:
    url: http://127.0.0.1:8080
    job_id: "{{ job.job_id }}"
    state: provisioning
  delegate_to: localhost

- name: Media ejected; close the job
  l3metal.provision.provision_job:
    url: http://127.0.0.1:8080
    job_id: "{{ job.job_id }}"
    state: complete
  delegate_to: localhost

- name: The controller gave up (BMC refused the boot)
  l3metal.provision.provision_job:
    url: http://127.0.0.1:8080
    server_serial: "{{ serial }}"
    state: failed
    failed_step: redfish-boot
    reason: "{{ boot_result.msg }}"
  delegate_to: localhost
'''

RETURN = r'''
job_id:
  description: Id of the job; V(null) in check mode before the job exists.
  returned: success, and on failure when the job's status refused the change
  type: str
  sample: 0b6d7ad4-5f3c-4d8e-9a51-2f4c1f0e9d21
status:
  description:
    - Status of the job after the task (V(queued), V(provisioning), V(succeeded), V(failed) or V(complete)).
    - When the task failed because the job's status does not allow the change (for example O(state=failed) for a job
      whose node has reported V(succeeded)), the job's status as the receiver holds it now.
  returned: success, and on failure when the job's status refused the change
  type: str
  sample: queued
created:
  description: Whether this run created the job (in check mode, whether it would).
  returned: success
  type: bool
job:
  description:
    - The receiver's job document (never with the token); V(null) when there is none yet.
    - When the task failed because the job's status does not allow the change, the job as the receiver holds it now
      (with the outcome its node reported).
  returned: success, and on failure when the job's status refused the change
  type: dict
  contains:
    job_id:
      description: Job id.
      type: str
      returned: success
    status:
      description: Job status.
      type: str
      returned: success
    server_serial:
      description: Serial number.
      type: str
      returned: success
    failed_step:
      description: What failed, else V(null).
      type: str
      returned: success
    reason:
      description: Why it failed, else V(null).
      type: str
      returned: success
    created_at:
      description: RFC 3339 UTC time of creation.
      type: str
      returned: success
    last_update:
      description: RFC 3339 UTC time of the last change.
      type: str
      returned: success
    recipe_sha256:
      description: Digest of the normalized recipe.
      type: str
      returned: success
    media_url:
      description: Per-job media URL prefix (append a file name); V(null) once complete.
      type: str
      returned: success
    media_dir:
      description: Directory on the receiver host behind RV(job.media_url).
      type: str
      returned: success
token:
  description:
    - The per-job token the node signs its webhooks with. Only when this run created the job or reissued its token;
      else V(null).
  returned: success
  type: str
callback:
  description: The recipe's C(callback) block (url, job_id, token, serial); V(null) when RV(token) is.
  returned: success
  type: dict
  sample: {url: http://10.1.1.10:8080, job_id: 0b6d7ad4-5f3c-4d8e-9a51-2f4c1f0e9d21, token: "...", serial: XF-12345ABC}
recipe:
  description: The normalized recipe with its callback block, for M(l3metal.provision.task_iso); V(null) when RV(token) is.
  returned: success
  type: dict
media_url:
  description: Per-job media URL prefix, for example V(http://10.1.1.10:8080/media/jobs/<id>/<key>/); add V(task.iso).
  returned: success
  type: str
media_dir:
  description: Directory on the receiver host whose files are served under RV(media_url); write the task medium there.
  returned: success
  type: str
replaced_job_id:
  description: With O(force), the job that was completed to make room.
  returned: when a job was replaced
  type: str
'''

from urllib.parse import urlparse

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.l3metal.provision.plugins.module_utils._contract.recipe import HAS_JSONSCHEMA, JSONSCHEMA_IMPORT_ERROR, RecipeError
from ansible_collections.l3metal.provision.plugins.module_utils._receiver import (
    ReceiverError,
    TransitionRefused,
    client_from_params,
    ensure_job,
    ensure_status,
    receiver_argument_spec,
)


def main() -> None:
    argument_spec = receiver_argument_spec()
    argument_spec.update(
        state=dict(type='str', choices=['present', 'provisioning', 'failed', 'complete'], default='present'),
        server_serial=dict(type='str'),
        job_id=dict(type='str'),
        recipe=dict(type='raw'),
        attached=dict(type='list', elements='str', default=[]),
        public_url=dict(type='str'),
        reissue_token=dict(type='bool', default=False, no_log=False),
        force=dict(type='bool', default=False),
        failed_step=dict(type='str'),
        reason=dict(type='str'),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        required_if=[
            ('state', 'present', ('server_serial', 'recipe')),
            ('state', 'provisioning', ('server_serial', 'job_id'), True),
            ('state', 'failed', ('server_serial', 'job_id'), True),
            ('state', 'failed', ('failed_step',)),
            ('state', 'complete', ('server_serial', 'job_id'), True),
        ],
        supports_check_mode=True,
    )
    params = module.params
    state = params['state']
    if state == 'present' and not HAS_JSONSCHEMA:
        module.fail_json(msg=missing_required_lib('jsonschema'), exception=str(JSONSCHEMA_IMPORT_ERROR))

    result: dict = dict(changed=False, created=False, token=None, callback=None, recipe=None)
    try:
        client = client_from_params(params)
        if state == 'present':
            outcome = ensure_job(client, params['server_serial'], params['recipe'], params['attached'], params['public_url'],
                                 params['reissue_token'], params['force'], module.check_mode)
            job = outcome.job
            result.update(changed=outcome.changed, created=outcome.created)
            if outcome.secrets:
                result.update(outcome.secrets)
            if outcome.replaced:
                result['replaced_job_id'] = outcome.replaced.get('job_id')
            before = outcome.replaced if outcome.created else job
        else:
            changed, before, job = ensure_status(client, state, params['job_id'], params['server_serial'], params['failed_step'],
                                                 params['reason'], module.check_mode)
            result['changed'] = changed
    except RecipeError as exc:
        module.fail_json(msg=exc.summary(), errors=exc.as_dicts())
    except TransitionRefused as exc:
        # the job as it is now: a caller that raced the node (its report came first) goes on with the node's outcome
        module.fail_json(msg=str(exc), status_code=exc.status, errors=exc.errors, job=exc.job, job_id=exc.job.get('job_id'),
                         status=exc.job.get('status'))
    except ReceiverError as exc:
        module.fail_json(msg=str(exc), status_code=exc.status, errors=exc.errors)

    callback_url = (result.get('callback') or {}).get('url', '')
    if urlparse(callback_url).hostname in ('127.0.0.1', '::1', 'localhost'):
        module.warn('the callback URL %s is a loopback address: servers cannot reach it. Set public_url (or the receiver\'s '
                    '--public-url / webhook_receiver_public_url) to the address the servers and their BMCs use.' % callback_url)
    result.update(job=job, job_id=(job or {}).get('job_id'), status=(job or {}).get('status'),
                  media_url=(job or {}).get('media_url'), media_dir=(job or {}).get('media_dir'))
    if module._diff:
        result['diff'] = dict(before=_summary(before), after=_summary(job))
    module.exit_json(**result)


def _summary(job: dict | None) -> dict:
    return {'job_id': job.get('job_id'), 'status': job.get('status')} if job else {}


if __name__ == '__main__':
    main()
