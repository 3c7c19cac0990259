#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: provision_job_media_info
short_description: List the task media a provisioning job holds in the webhook receiver
version_added: 0.2.0
description:
  - Reads the media uploaded for the job O(job_id) (M(l3metal.provision.provision_job_media)) from the webhook receiver
    (C(GET /api/v1/jobs/{id}/media)) - their names, sha256 and sizes, not their content - and with O(name) the one
    medium of that name, so a playbook can tell whether a medium is stored without writing.
  - Files placed in the job's media directory by hand are not listed; only what was uploaded over the API.
author:
  - l3metal.provision contributors (@l3metal)
extends_documentation_fragment:
  - l3metal.provision.attributes
  - l3metal.provision.attributes.INFO_MODULE
  - l3metal.provision.receiver
options:
  job_id:
    description: The job whose media to list (RV(l3metal.provision.provision_job#module:job_id)).
    type: str
    required: true
  name:
    description: A medium's name; RV(medium) is that medium, or V(null) when the job holds none of that name.
    type: str
notes:
  - O(api_token) may be the receiver's API token or the job's own token.
seealso:
  - module: l3metal.provision.provision_job_media
'''

EXAMPLES = r'''
- name: Does the receiver hold the server's task medium?
  l3metal.provision.provision_job_media_info:
    url: http://receiver.example.com:8080
    job_id: "{{ job.job_id }}"
    name: "{{ server_serial }}-task.iso"
  delegate_to: localhost
  register: held

- name: Say so
  ansible.builtin.debug:
    msg: "{{ 'stored, sha256 ' ~ held.medium.sha256 if held.medium else 'not uploaded' }}"
'''

RETURN = r'''
media:
  description: The job's uploaded media, by name; empty once the job is complete.
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: The medium's file name.
      type: str
    sha256:
      description: The sha256 of its content (hexadecimal).
      type: str
    size:
      description: Its size in bytes.
      type: int
    created_at:
      description: When it was uploaded (UTC, ISO 8601).
      type: str
    url:
      description: Where the BMC downloads it (the job's media URL and the name).
      type: str
medium:
  description: With O(name), the entry of RV(media) with that name, else V(null).
  returned: success
  type: dict
job_status:
  description: The job's status (V(complete) means it takes no more media).
  returned: success
  type: str
  sample: queued
media_url:
  description: The job's media URL (a medium's URL is this followed by its name); V(null) once the job is complete.
  returned: success
  type: str
max_size:
  description: The largest medium the receiver accepts, in bytes (its C(--max-medium-bytes)).
  returned: success
  type: int
  sample: 16777216
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.l3metal.provision.plugins.module_utils._receiver import ReceiverError, client_from_params, job_media, receiver_argument_spec


def main() -> None:
    argument_spec = receiver_argument_spec()
    argument_spec.update(
        job_id=dict(type='str', required=True),
        name=dict(type='str'),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    try:
        listing = job_media(client_from_params(params), params['job_id'])
    except ReceiverError as exc:
        module.fail_json(msg=str(exc), status_code=exc.status)
    media = listing.get('media') or []
    medium = next((item for item in media if item.get('name') == params['name']), None) if params['name'] else None
    module.exit_json(changed=False, media=media, medium=medium, job_status=listing.get('job_status'), media_url=listing.get('media_url'),
                     max_size=listing.get('max_size'))


if __name__ == '__main__':
    main()
