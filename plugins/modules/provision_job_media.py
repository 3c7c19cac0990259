#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: provision_job_media
short_description: Upload a task medium of a provisioning job to the webhook receiver
version_added: 0.2.0
description:
  - Makes sure the active job O(job_id) holds the file O(src) (on the host that runs the task) as its medium O(name) in
    the webhook receiver (C(PUT /api/v1/jobs/{id}/media/{name})). The receiver keeps it in its database and serves it at
    the job's media URL (RV(url)), where the BMC downloads it, from any receiver that shares the database.
  - For a controller that does not have the receiver's media directory (an AWX execution-environment pod, a build host
    that is not the receiver host); role C(l3metal.provision.task_media) uses it (C(task_media_upload)).
  - Reads what the receiver holds first (C(GET /api/v1/jobs/{id}/media)), so the same content already stored sends
    nothing and reports C(changed=false), and a refusal the upload would get is told before a byte is sent.
  - A stored name takes no other content (the receiver answers 409 C(medium_exists)); give another O(name) or register a
    new job. A complete job takes no media. The receiver's limit is C(--max-medium-bytes) (default 16 MiB), which is meant for
    small task media - large ones are served by URL.
  - The file is streamed from disk with its sha256 in C(X-Content-SHA256); the receiver refuses a body that does not
    match it and stores nothing.
author:
  - l3metal.provision contributors (@l3metal)
extends_documentation_fragment:
  - l3metal.provision.attributes
  - l3metal.provision.receiver
attributes:
  check_mode:
    support: full
    details: Reads the job's media and says whether the file would be uploaded (or would be refused); sends no upload.
  diff_mode:
    support: none
options:
  job_id:
    description:
      - The active job whose medium this is (RV(l3metal.provision.provision_job#module:job_id)).
    type: str
    required: true
  name:
    description:
      - File name of the medium in the job's media URL, 1 to 128 letters, digits and C(._+-), starting with a letter or digit.
    type: str
    required: true
  src:
    description:
      - Path of the file to upload, on the host that runs the task (normally the controller).
    type: path
    required: true
  state:
    description:
      - V(present) is the only state; the receiver deletes a job's media when the job becomes complete.
    type: str
    choices: [present]
    default: present
notes:
  - O(api_token) may be the receiver's API token or the job's own token (RV(l3metal.provision.provision_job#module:token)).
  - The medium of a recipe holds the job's token; the module does not read or print the file's content.
seealso:
  - module: l3metal.provision.provision_job
  - module: l3metal.provision.task_iso
  - name: Task media over the API (docs/receiver.md)
    description: The receiver's side of the upload, its limits and its error codes.
    link: https://github.com/l3metal/l3metal.provision/blob/main/docs/receiver.md#task-media-over-the-api
'''

EXAMPLES = r'''
- name: Register the job
  l3metal.provision.provision_job:
    url: http://receiver.example.com:8080
    server_serial: "{{ server_serial }}"
    recipe: "{{ recipe }}"
  delegate_to: localhost
  register: job
  no_log: true  # the result holds the job's token

- name: Build the task medium into a temporary file
  l3metal.provision.task_iso:
    dest: "{{ scratch_dir }}/task.iso"
    recipe: "{{ job.recipe }}"
  delegate_to: localhost
  when: job.created

- name: Upload it; the BMC downloads it from medium.url
  l3metal.provision.provision_job_media:
    url: http://receiver.example.com:8080
    job_id: "{{ job.job_id }}"
    name: "{{ server_serial }}-task.iso"
    src: "{{ scratch_dir }}/task.iso"
  delegate_to: localhost
  register: medium
  when: job.created
'''

RETURN = r'''
sha256:
  description: The sha256 of O(src) (hexadecimal), which is what the receiver holds under O(name).
  returned: success
  type: str
  sample: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
size:
  description: Size of the medium in bytes.
  returned: success
  type: int
  sample: 376832
url:
  description:
    - Where the BMC downloads the medium, the job's media URL followed by O(name). It works until the job is complete.
  returned: success
  type: str
  sample: http://receiver.example.com:8080/media/jobs/0b6d7ad4-5f3c-4d8e-9a51-2f4c1f0e9d21/hY3k.../XF-12345ABC-task.iso
created_at:
  description: When the receiver stored the medium (UTC, ISO 8601); V(null) in check mode before an upload.
  returned: success
  type: str
  sample: '2026-12-04T14:20:31.118Z'
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.l3metal.provision.plugins.module_utils._receiver import ReceiverError, client_from_params, ensure_medium, receiver_argument_spec


def main() -> None:
    argument_spec = receiver_argument_spec()
    argument_spec.update(
        job_id=dict(type='str', required=True),
        name=dict(type='str', required=True),
        src=dict(type='path', required=True),
        state=dict(type='str', choices=['present'], default='present'),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    try:
        client = client_from_params(params)
        result = ensure_medium(client, params['job_id'], params['name'], params['src'], check_mode=module.check_mode)
    except ReceiverError as exc:
        module.fail_json(msg=str(exc), status_code=exc.status)
    module.exit_json(changed=result.changed, sha256=result.sha256, size=result.size, url=result.url, created_at=result.created_at)


if __name__ == '__main__':
    main()
