#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: redfish_virtual_media_info
short_description: List the virtual media slots of a BMC and where the two provisioning media should go
version_added: 0.1.0
description:
  - Lists every virtual media slot of the system (under C(Systems/<id>/VirtualMedia), else under its manager) with its
    media types, whether it can be mounted, and what it holds.
  - Suggests the slot layout of the two-media design in RV(layout) - the boot medium on the first virtual CD, the task
    medium on a second CD as an ISO, or on a removable (USB) slot as a FAT image when the BMC has a single CD.
  - Slots are numbered as M(l3metal.provision.redfish_virtual_media) numbers them (natural order of the slot C(Id)s,
    not the BMC's list order), and M(l3metal.provision.redfish_boot) with O(l3metal.provision.redfish_boot#module:boot_target=cd)
    boots the slot C(layout.boot) names unless told otherwise, so the three modules agree.
  - Also returns the power state and the boot override, so a play can decide what to do next from one call.
author:
  - l3metal.provision contributors (@l3metal)
extends_documentation_fragment:
  - l3metal.provision.redfish
  - l3metal.provision.attributes
  - l3metal.provision.attributes.INFO_MODULE
seealso:
  - module: l3metal.provision.redfish_virtual_media
  - module: l3metal.provision.task_iso
'''

EXAMPLES = r'''
- name: Read the slots of the node's BMC
  l3metal.provision.redfish_virtual_media_info:
    baseuri: "{{ bmc_address }}"
    username: "{{ bmc_user }}"
    password: "{{ bmc_password }}"
  delegate_to: localhost
  register: vmedia

- name: Build the task medium in the format the BMC's free slot needs
  l3metal.provision.task_iso:
    dest: "/srv/l3metal/media/{{ inventory_hostname }}-task.{{ 'img' if vmedia.layout.task.format == 'fat' else 'iso' }}"
    recipe: "{{ recipe }}"
    format: "{{ vmedia.layout.task.format }}"
  delegate_to: localhost

- name: Insert it where the layout says
  l3metal.provision.redfish_virtual_media:
    baseuri: "{{ bmc_address }}"
    username: "{{ bmc_user }}"
    password: "{{ bmc_password }}"
    image_url: "https://media.example.com/jobs/{{ inventory_hostname }}-task.{{ 'img' if vmedia.layout.task.format == 'fat' else 'iso' }}"
    media_type: "{{ vmedia.layout.task.media_type }}"
    slot: "{{ vmedia.layout.task.slot }}"
  delegate_to: localhost
'''

RETURN = r'''
slots:
  description:
    - Every virtual media slot, in the natural order of their C(Id)s, with C(id), C(name), C(path), C(media_types), C(inserted), C(image),
      C(image_name), C(write_protected), C(connected_via), C(mountable), C(mount_method) and C(not_mountable_reason).
  returned: success
  type: list
  elements: dict
  sample:
    - {id: CD, media_types: [CD, DVD], inserted: false, image: null, mountable: true, mount_method: action}
    - {id: RemovableDisk, media_types: [USBStick], inserted: false, image: null, mountable: true, mount_method: action}
mountable:
  description: Number of mountable slots per media type (a slot accepting both counts for both).
  returned: success
  type: dict
  sample: {cd: 1, usb: 1}
layout:
  description:
    - Where the two-media design puts its media on this BMC. C(boot) is null when there is no mountable CD slot;
      C(task) is null when there is neither a second CD nor a removable slot.
    - C(task.format) is V(iso) or V(fat), the O(l3metal.provision.task_iso#module:format) to build.
  returned: success
  type: dict
  sample:
    boot: {media_type: cd, slot: 1, slot_id: CD}
    task: {media_type: usb, slot: 1, slot_id: RemovableDisk, format: fat}
virtual_media_path:
  description: The VirtualMedia collection used.
  returned: success
  type: str
  sample: /redfish/v1/Managers/iDRAC.Embedded.1/VirtualMedia
power_state:
  description: C(PowerState) of the system.
  returned: success
  type: str
  sample: 'Off'
boot_override:
  description:
    - The boot override the BMC reports (C(target), C(enabled), C(mode), C(boot_next), C(uefi_target), C(allowed_targets)).
    - C(pending) is true when the values come from the C(@Redfish.Settings) object and apply at the next reset;
      C(source) is the resource they were read from.
  returned: success
  type: dict
  sample: {target: Cd, enabled: Once, mode: UEFI, boot_next: null, uefi_target: null, pending: false,
           source: /redfish/v1/Systems/1, allowed_targets: [None, Pxe, Cd, Usb, Hdd]}
system:
  description: Id, path, manufacturer, model and power state of the system.
  returned: success
  type: dict
  sample: {id: '1', manufacturer: HPE, model: ProLiant DL360 Gen10, power_state: 'Off', path: /redfish/v1/Systems/1}
quirks:
  description: Entries of the vendor quirks table that apply to this system.
  returned: success
  type: list
  elements: dict
auth_method:
  description: V(session), V(basic) or V(none).
  returned: success
  type: str
bmc:
  description: The BMC base URL used.
  returned: always
  type: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.l3metal.provision.plugins.module_utils._redfish.boot import BootManager
from ansible_collections.l3metal.provision.plugins.module_utils._redfish.connection import RedfishClient
from ansible_collections.l3metal.provision.plugins.module_utils._redfish.module_support import redfish_argument_spec, run_redfish
from ansible_collections.l3metal.provision.plugins.module_utils._redfish.vmedia import MEDIA_TYPES, VirtualMediaManager, suggest_layout


def main() -> None:
    module = AnsibleModule(argument_spec=redfish_argument_spec(), supports_check_mode=True)

    def operation(client: RedfishClient) -> dict:
        manager = VirtualMediaManager(client, check_mode=True)
        slots = manager.slots()
        boot = BootManager(client, check_mode=True)
        return dict(
            changed=False,
            slots=[s.as_dict() for s in slots],
            mountable={kind: sum(1 for s in slots if s.mountable and s.accepts(kind)) for kind in MEDIA_TYPES},
            layout=suggest_layout(slots, client.quirks()),
            virtual_media_path=manager.collection_path,
            power_state=boot.power_state,
            boot_override=boot.read_override().as_dict(),
        )

    run_redfish(module, operation)


if __name__ == '__main__':
    main()
