#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: recipe_validate
short_description: Validate and normalize a provisioning recipe
version_added: 0.1.0
description:
  - Checks a recipe against the collection's recipe schema (the same schema the maintenance OS uses on the node)
    and against the rules a schema cannot express, such as that only the last partition may use 100%.
  - "Reports B(every) problem at once, each with the JSON path of the value and a message that says how to fix it,
    for example C(partition_layout[1].size: '10X' does not match the expected format (use 512M, 20G or 100%))."
  - Returns the normalized recipe (fields in schema order, sizes and type codes in one case, base64 without line breaks),
    ready for M(l3metal.provision.task_iso).
  - The per-job callback token, when present, is masked in the module output.
author:
  - l3metal.provision contributors (@l3metal)
extends_documentation_fragment:
  - l3metal.provision.attributes
attributes:
  check_mode:
    support: full
    details: The module only reads its input.
  diff_mode:
    support: N/A
    details: The module only reads its input.
options:
  recipe:
    description:
      - The recipe as a mapping, or as a JSON or YAML string.
      - Mutually exclusive with O(path).
    type: raw
  path:
    description:
      - Path of a JSON or YAML file on the managed node that holds the recipe.
      - Mutually exclusive with O(recipe).
    type: path
  attached_payloads:
    description:
      - Payloads that will be given to M(l3metal.provision.task_iso) as separate options rather than inside the recipe,
        so rules that need them (V(install-windows.target) needs an unattend file) count them as present.
    type: list
    elements: str
    choices: [user_data, unattend_xml, ks_cfg]
    default: []
  fail_on_error:
    description:
      - When V(true), an invalid recipe fails the task, listing all problems.
      - When V(false), the task succeeds and returns RV(valid=false) with RV(errors), for playbooks that report problems themselves.
    type: bool
    default: true
requirements:
  - jsonschema >= 3.2
  - PyYAML (for YAML input)
notes:
  - The schema is documented in the collection's C(docs/recipe.md) and shipped as C(docs/recipe.schema.json).
seealso:
  - module: l3metal.provision.task_iso
'''

EXAMPLES = r'''
- name: Validate a Linux recipe given inline
  l3metal.provision.recipe_validate:
    recipe:
      task_target: install-linux.target
      target_disk: /dev/sda
      oci_url: registry.example.com/os-images/ubuntu-rootfs:22.04
      user_data: "{{ lookup('file', 'user-data') | b64encode }}"
      partition_layout:
        - {size: 512M, type_guid: ef00, format: vfat, mountpoint: /boot/efi}
        - {size: 100%, type_guid: "8300", format: ext4, mountpoint: /}
  register: checked

- name: Validate a recipe file and report problems without failing
  l3metal.provision.recipe_validate:
    path: /srv/recipes/node01.json
    fail_on_error: false
  register: result

- name: Show what is wrong
  ansible.builtin.debug:
    msg: "{{ result.errors | map(attribute='message') | list }}"
  when: not result.valid
'''

RETURN = r'''
valid:
  description: Whether the recipe is valid.
  returned: always
  type: bool
  sample: true
recipe:
  description: The normalized recipe; absent when the recipe is invalid.
  returned: success
  type: dict
  sample: {"task_target": "install-linux.target", "target_disk": "/dev/sda", "oci_url": "registry.example.com/os/ubuntu:22.04",
           "partition_layout": [{"size": "512M", "type_guid": "ef00", "format": "vfat"}, {"size": "100%", "type_guid": "8300", "format": "ext4"}]}
errors:
  description: Every problem found; empty when the recipe is valid.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: JSON path of the value, such as C(partition_layout[1].size), or C(recipe) for the document itself.
      type: str
      sample: partition_layout[1].size
    message:
      description: What is wrong and how to fix it.
      type: str
      sample: "'10X' does not match the expected format (use 512M, 20G or 100%)"
'''

import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.l3metal.provision.plugins.module_utils._contract.recipe import (
    HAS_JSONSCHEMA,
    JSONSCHEMA_IMPORT_ERROR,
    RecipeError,
    load_recipe_file,
    recipe_secrets,
    validate_recipe,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            recipe=dict(type='raw'),
            path=dict(type='path'),
            attached_payloads=dict(type='list', elements='str', choices=['user_data', 'unattend_xml', 'ks_cfg'], default=[]),
            fail_on_error=dict(type='bool', default=True),
        ),
        mutually_exclusive=[('recipe', 'path')],
        required_one_of=[('recipe', 'path')],
        supports_check_mode=True,
    )
    if not HAS_JSONSCHEMA:
        module.fail_json(msg=missing_required_lib('jsonschema'), exception=str(JSONSCHEMA_IMPORT_ERROR))

    module.no_log_values.update(recipe_secrets(module.params['recipe']))  # also when the recipe is refused
    try:
        source = load_recipe_file(module.params['path']) if module.params['path'] else module.params['recipe']
        recipe = validate_recipe(source, attached=module.params['attached_payloads'])
    except RecipeError as exc:
        errors = exc.as_dicts()
        if module.params['fail_on_error']:
            module.fail_json(msg=exc.summary(), valid=False, errors=errors)
        module.exit_json(changed=False, valid=False, errors=errors)
    except Exception as exc:  # pylint: disable=broad-exception-caught
        # A bug must still give a readable message, never a bare traceback for a recipe.
        module.fail_json(msg='unexpected error while validating the recipe: %s' % exc, exception=traceback.format_exc())

    token = (recipe.get('callback') or {}).get('token')
    if token:
        module.no_log_values.add(token)
    module.exit_json(changed=False, valid=True, recipe=recipe, errors=[])


if __name__ == '__main__':
    main()
