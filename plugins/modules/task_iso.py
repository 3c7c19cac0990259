#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: task_iso
short_description: Build the per-job task medium (ISO 9660 or FAT image) for the maintenance OS or the ESXi installer
version_added: 0.1.0
description:
  - Builds the small medium that the server reads after booting the maintenance ISO (or the ESXi installer) from
    virtual media, holding C(/recipe.json), C(/recipe.schema.json) and, when given, C(/user-data), C(/meta-data),
    C(/unattend.xml), C(/ks.cfg) and any extra files.
  - The ISO has ISO 9660 (level 3), Joliet and Rock Ridge trees. Plain ISO 9660 names are upper case, so the ESXi
    installer finds the kickstart as C(KS.CFG) (boot option C(ks=cdrom:/KS.CFG)).
  - The recipe is validated first (see M(l3metal.provision.recipe_validate)). Payloads that sit in the recipe
    (base64 C(user_data), C(unattend_xml), C(ks_cfg)) are moved out of C(recipe.json) into their own files, so each
    lands on the medium once.
  - The image is built in memory and is reproducible (fixed timestamps). The same inputs give byte-identical output,
    so a re-run reports no change and leaves the file alone. A changed image replaces O(dest) atomically
    (temporary file and rename), so a BMC downloading it never sees a half-written medium.
  - O(format=fat) builds a FAT image with the same files instead, for BMCs with a single virtual CD that take the task
    medium on a removable-disk (USB) slot.
author:
  - l3metal.provision contributors (@l3metal)
extends_documentation_fragment:
  - l3metal.provision.attributes
  - ansible.builtin.files
attributes:
  check_mode:
    support: full
    details: The image is built in memory and compared with O(dest); nothing is written.
  diff_mode:
    support: partial
    details: Shows the checksum, size and file list before and after; not the file contents.
options:
  dest:
    description:
      - Path of the image to write. Its directory must exist.
    type: path
    required: true
  recipe:
    description:
      - The recipe, as a mapping or a JSON/YAML string. Written as C(/recipe.json) together with C(/recipe.schema.json).
      - Optional for an ESXi medium, which needs only O(ks_cfg).
    type: raw
  user_data:
    description:
      - cloud-init user-data, written as C(/user-data). Plain text, not base64.
      - May instead be in the recipe (base64); giving both with different content is an error.
    type: str
  meta_data:
    description: cloud-init meta-data, written as C(/meta-data).
    type: str
  unattend_xml:
    description:
      - Windows answer file, written as C(/unattend.xml). Plain text.
      - May instead be in the recipe (base64).
    type: str
  ks_cfg:
    description:
      - ESXi kickstart, written as C(/ks.cfg) (C(KS.CFG) in the ISO 9660 tree). Plain text.
      - May instead be in the recipe (base64).
    type: str
  ks_report:
    description:
      - Append a C(%firstboot) section to O(ks_cfg) that sends the job's signed C(success) webhook from the installed ESXi host
        at the end of its first boot (Python standard library only, as ESXi ships it; signed as the receiver's webhook
        contract says). The role M(l3metal.provision.provision_esxi) sets it from the job's C(callback).
      - The medium then holds the job's token; O(ks_report.token) is kept out of the task's output.
    type: dict
    suboptions:
      url:
        description: Base URL of the webhook receiver as the installed host reaches it (the job's C(callback.url)).
        type: str
        required: true
      serial:
        description: The server's serial number (C(callback.serial)).
        type: str
        required: true
      job_id:
        description: The job (C(callback.job_id)).
        type: str
        required: true
      token:
        description: The job's token (C(callback.token)).
        type: str
        required: true
      ca_cert:
        description: PEM certificate(s) of the CA that signed an V(https://) receiver's certificate; empty uses the host's trust store.
        type: str
        default: ""
      attempts:
        description: Tries before the script gives up (with exponential backoff from 2 up to 60 seconds between them).
        type: int
        default: 12
  files:
    description:
      - Extra files, as a mapping of relative path (for example V(scripts/post.sh)) to text content.
      - Path components use letters, digits, C(.), C(-) and C(_), at most 64 characters each, at most 6 directories deep.
      - The names of the files above are reserved.
    type: dict
    default: {}
  volume_label:
    description:
      - Volume label; the maintenance OS looks for the task medium by this label first.
      - Letters, digits, C(_) and C(-); at most 32 characters for ISO and 11 for FAT. Stored in upper case.
    type: str
    default: L3M_TASK
  format:
    description:
      - V(iso) builds an ISO 9660 image for a virtual CD slot.
      - V(fat) builds a FAT image (no partition table) for a removable-disk slot; it needs GNU mtools on the host
        that runs the module.
    type: str
    choices: [iso, fat]
    default: iso
  validate:
    description:
      - Validate the recipe before building. Turn off only to build media for tests of the validation on the node.
    type: bool
    default: true
requirements:
  - pycdlib >= 1.11
  - jsonschema >= 3.2
  - mtools (only for O(format=fat))
notes:
  - The recipe's C(callback.token) is kept out of the task's output (also with C(-vvv)).
  - The medium carries the per-job callback token of the recipe. It is valid for this job only; still, keep O(dest)
    readable only by the service that serves it (O(mode), O(owner), O(group)).
seealso:
  - module: l3metal.provision.recipe_validate
'''

EXAMPLES = r'''
- name: Task medium for a Linux install
  l3metal.provision.task_iso:
    dest: /srv/l3metal/media/{{ inventory_hostname }}-task.iso
    recipe: "{{ recipe }}"
    user_data: "{{ lookup('template', 'user-data.j2') }}"
    meta_data: "instance-id: {{ job.job_id }}\n"
  delegate_to: localhost

- name: Kickstart-only medium for the ESXi installer
  l3metal.provision.task_iso:
    dest: /srv/l3metal/media/esxi01-ks.iso
    ks_cfg: "{{ lookup('template', 'ks.cfg.j2') }}"
    volume_label: ESXI_KS
  delegate_to: localhost

- name: FAT image for a BMC with a single virtual CD
  l3metal.provision.task_iso:
    dest: /srv/l3metal/media/node07-task.img
    recipe: "{{ recipe }}"
    format: fat
    mode: '0640'
  delegate_to: localhost
'''

RETURN = r'''
path:
  description: Path of the image.
  returned: success
  type: str
  sample: /srv/l3metal/media/node01-task.iso
size:
  description: Size of the image in bytes.
  returned: success
  type: int
  sample: 90112
sha256:
  description: SHA-256 of the image.
  returned: success
  type: str
  sample: fcdb30664172a774817655c8d77d4757a9eeb0f2a55e50748f9ac289b7376e86
files:
  description: Paths of the files on the medium.
  returned: success
  type: list
  elements: str
  sample: [meta-data, recipe.json, recipe.schema.json, user-data]
format:
  description: V(iso) or V(fat).
  returned: success
  type: str
  sample: iso
volume_label:
  description: The volume label as written (upper case).
  returned: success
  type: str
  sample: L3M_TASK
'''

import os
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.l3metal.provision.plugins.module_utils._contract.recipe import HAS_JSONSCHEMA, JSONSCHEMA_IMPORT_ERROR, RecipeError, recipe_secrets
from ansible_collections.l3metal.provision.plugins.module_utils._esxi_kickstart import KickstartError, with_firstboot_report
from ansible_collections.l3metal.provision.plugins.module_utils._task_media import (
    HAS_PYCDLIB,
    PYCDLIB_IMPORT_ERROR,
    TaskMediaError,
    build_media,
    collect_files,
    file_sha256,
    write_atomic,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            dest=dict(type='path', required=True),
            recipe=dict(type='raw'),
            user_data=dict(type='str'),
            meta_data=dict(type='str'),
            unattend_xml=dict(type='str'),
            ks_cfg=dict(type='str'),
            ks_report=dict(type='dict', options=dict(
                url=dict(type='str', required=True),
                serial=dict(type='str', required=True),
                job_id=dict(type='str', required=True),
                token=dict(type='str', required=True, no_log=True),
                ca_cert=dict(type='str', default=''),
                attempts=dict(type='int', default=12),
            )),
            files=dict(type='dict', default={}),
            volume_label=dict(type='str', default='L3M_TASK'),
            format=dict(type='str', choices=['iso', 'fat'], default='iso'),
            validate=dict(type='bool', default=True),
        ),
        add_file_common_args=True,
        supports_check_mode=True,
        required_by={'ks_report': 'ks_cfg'},
    )
    params = module.params
    # the recipe's callback token stays out of every result, the invocation shown with -vvv included
    module.no_log_values.update(recipe_secrets(params['recipe']))
    if params['format'] == 'iso' and not HAS_PYCDLIB:
        module.fail_json(msg=missing_required_lib('pycdlib'), exception=str(PYCDLIB_IMPORT_ERROR))
    if params['recipe'] is not None and params['validate'] and not HAS_JSONSCHEMA:
        module.fail_json(msg=missing_required_lib('jsonschema'), exception=str(JSONSCHEMA_IMPORT_ERROR))
    for name, content in params['files'].items():
        if not isinstance(content, str):
            module.fail_json(msg='files: the content of %r must be a string, got %s' % (name, type(content).__name__))

    dest = params['dest']
    payloads = {key: params[key] for key in ('user_data', 'unattend_xml', 'ks_cfg')}
    try:
        if params['ks_report']:
            report = params['ks_report']
            payloads['ks_cfg'] = with_firstboot_report(params['ks_cfg'], report, ca_cert=report['ca_cert'] or None, attempts=report['attempts'])
        files = collect_files(
            recipe=params['recipe'],
            payloads=payloads,
            meta_data=params['meta_data'],
            extra_files=params['files'],
            validate=params['validate'],
        )
        media = build_media(files, params['format'], params['volume_label'])
        if os.path.isdir(dest):
            raise TaskMediaError('dest: %s is a directory; give the path of the image file' % dest)
        before = file_sha256(dest)
    except RecipeError as exc:
        module.fail_json(msg=exc.summary(), errors=exc.as_dicts())
    except KickstartError as exc:
        module.fail_json(msg=str(exc))
    except TaskMediaError as exc:
        module.fail_json(msg=str(exc))
    except Exception as exc:  # pylint: disable=broad-exception-caught
        module.fail_json(msg='unexpected error while building the task medium: %s' % exc, exception=traceback.format_exc())

    changed = before != media.sha256
    if changed and not module.check_mode:
        try:
            write_atomic(dest, media.data, mode=0o644 if before is None else os.stat(dest).st_mode & 0o7777)
        except (OSError, TaskMediaError) as exc:
            module.fail_json(msg='dest: cannot write %s: %s' % (dest, getattr(exc, 'strerror', None) or exc))

    result = dict(
        changed=changed,
        path=dest,
        size=len(media.data),
        sha256=media.sha256,
        files=media.files,
        format=params['format'],
        volume_label=params['volume_label'].upper(),
    )
    if module._diff:
        result['diff'] = dict(
            before=dict(sha256=before) if before else {},
            after=dict(sha256=media.sha256, size=len(media.data), files=media.files),
            before_header=dest,
            after_header=dest,
        )
    if not module.check_mode or not changed:
        file_args = module.load_file_common_arguments(params, path=dest)
        result['changed'] = module.set_fs_attributes_if_different(file_args, result['changed'])
    module.exit_json(**result)


if __name__ == '__main__':
    main()
