#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: redfish_virtual_media
short_description: Insert or eject virtual media on a BMC through Redfish
version_added: 0.1.0
description:
  - Makes a virtual media slot of a BMC hold an image (O(state=present)) or be empty (O(state=absent)), or ejects every
    slot (O(state=absent) with O(eject_all=true)).
  - Slots are found under the system (C(Systems/<id>/VirtualMedia)) and, when it has none, under its manager
    (C(Managers/<id>/VirtualMedia)). A slot is chosen by O(media_type) and O(slot), counting only slots that accept that
    media type and can be mounted (an C(InsertMedia) action or PATCH mounting), in the natural order of their C(Id)
    (numbers compared as numbers - C(1), C(2), C(10); C(CD1), C(Cd2), C(CD10)), never in the order the BMC lists them
    (iDRAC10 lists C(VirtualMedia/2) first). Slots that cannot be mounted (for example Lenovo RDOC slots) are listed
    in RV(slots) but never chosen.
  - Idempotent. A slot that already holds O(image_url) is left alone (C(changed=false)). A slot holding another image
    is ejected first; if the new image then cannot be inserted, the old one is inserted again before the module fails.
  - Every insert and eject is verified by reading the slot back; the module fails when the BMC answered success but
    the slot does not show the wanted state.
  - A slot is empty when it holds no C(Image); on Supermicro, which keeps C(Image)/C(ImageName) of an ejected medium,
    when C(Inserted) is false or C(ConnectedVia) is C(NotConnected) (quirks table). An C(InsertMedia) that Supermicro
    refuses because of C(Inserted)/C(WriteProtected) is sent again with C(Image) only, with a warning; the BMC's
    defaults then apply and those two are not compared on later runs.
  - A PATCH-mounted slot (Lenovo EXT) is written with the C(If-Match) ETag of the read the decision was made on; when
    the slot changed in between (HTTP 412) the PATCH is sent once more with the fresh ETag - at once when the refusal
    carries it (an C(ETag) header or the slot as body), else after reading the slot again - then the module fails. A
    PATCH is never re-sent without C(If-Match).
  - For BMCs with a single virtual CD, put the task medium on O(media_type=usb) as a FAT image built by
    M(l3metal.provision.task_iso) with C(format=fat); M(l3metal.provision.redfish_virtual_media_info) suggests the layout.
author:
  - l3metal.provision contributors (@l3metal)
extends_documentation_fragment:
  - l3metal.provision.redfish
  - l3metal.provision.attributes
attributes:
  check_mode:
    support: full
    details: Reads the slots and reports what would be inserted or ejected; sends no insert, eject or PATCH.
  diff_mode:
    support: full
    details: Shows image, inserted and write-protected state of every mountable slot before and after.
options:
  state:
    description:
      - V(present) makes the chosen slot hold O(image_url).
      - V(absent) ejects the chosen slot (only when it holds O(image_url), if that is given), or every slot with
        O(eject_all=true).
    type: str
    choices: [present, absent]
    default: present
  image_url:
    description:
      - URL the BMC downloads or streams the image from (C(http://), C(https://), or what the BMC supports such as NFS or
        CIFS). The BMC, not the controller, must be able to reach it.
      - Required with O(state=present).
    type: str
  media_type:
    description:
      - V(cd) counts slots that accept C(CD) or C(DVD) media; V(usb) counts removable-disk slots (C(USBStick) or
        C(Floppy)). A slot that accepts both counts for both.
    type: str
    choices: [cd, usb]
    default: cd
  slot:
    description:
      - Number (from 1) of the slot among the mountable slots of O(media_type), in the natural order of the slot
        C(Id)s (see the description), not in the order the BMC lists them.
      - A slot number the BMC does not have fails with the list of its slots.
    type: int
    default: 1
  eject_all:
    description:
      - With O(state=absent), eject every mountable slot that holds media. O(media_type) and O(slot) are then ignored.
    type: bool
    default: false
  inserted:
    description: Whether the image is to be treated as inserted once attached (C(Inserted) of the Redfish request).
    type: bool
    default: true
  write_protected:
    description: Whether the medium is write protected (C(WriteProtected) of the Redfish request).
    type: bool
    default: true
  transfer_protocol:
    description:
      - C(TransferProtocolType) sent with the insert. By default none is sent; sushy adds it from the URL scheme when the
        BMC asks for it.
    type: str
    choices: [CIFS, FTP, SFTP, HTTP, HTTPS, NFS, SCP, TFTP, OEM]
seealso:
  - module: l3metal.provision.redfish_virtual_media_info
  - module: l3metal.provision.redfish_boot
  - module: l3metal.provision.task_iso
'''

EXAMPLES = r'''
- name: Boot and task media for a node
  delegate_to: localhost
  module_defaults:
    group/l3metal.provision.redfish:
      baseuri: "{{ bmc_address }}"
      username: "{{ bmc_user }}"
      password: "{{ bmc_password }}"
      ca_path: /etc/l3metal/bmc-ca.pem
  block:
    - name: Maintenance ISO on the first virtual CD
      l3metal.provision.redfish_virtual_media:
        image_url: https://media.example.com/maintenance.iso
        media_type: cd
        slot: 1

    - name: Task ISO on the second virtual CD
      l3metal.provision.redfish_virtual_media:
        image_url: "https://media.example.com/jobs/{{ inventory_hostname }}-task.iso"
        media_type: cd
        slot: 2

- name: Single-CD BMC - task medium as a FAT image on the removable slot
  l3metal.provision.redfish_virtual_media:
    baseuri: "{{ bmc_address }}"
    username: "{{ bmc_user }}"
    password: "{{ bmc_password }}"
    image_url: "https://media.example.com/jobs/{{ inventory_hostname }}-task.img"
    media_type: usb
  delegate_to: localhost

- name: Eject everything after provisioning
  l3metal.provision.redfish_virtual_media:
    baseuri: "{{ bmc_address }}"
    username: "{{ bmc_user }}"
    password: "{{ bmc_password }}"
    state: absent
    eject_all: true
  delegate_to: localhost
'''

RETURN = r'''
slot:
  description: The slot acted on (or left alone because it already was right), as it is now; not returned with O(eject_all=true).
  returned: success and not O(eject_all)
  type: dict
  contains:
    id:
      description: C(Id) of the VirtualMedia resource.
      type: str
      sample: Cd2
    index:
      description: The slot number among the mountable slots of O(media_type) (what O(slot) selects).
      type: int
      sample: 2
    media_types:
      description: C(MediaTypes) the slot accepts.
      type: list
      elements: str
      sample: [CD, DVD]
    inserted:
      description: C(Inserted) as the BMC reports it (null when it does not).
      type: bool
    image:
      description: C(Image) URL the slot holds, null when empty.
      type: str
      sample: https://media.example.com/maintenance.iso
  sample:
    id: Cd2
    index: 2
    media_types: [CD, DVD]
    inserted: true
    image: https://media.example.com/jobs/node01-task.iso
    image_name: node01-task.iso
    write_protected: true
    mountable: true
    mount_method: action
slots:
  description:
    - Every virtual media slot of the system, in the natural order of their C(Id)s, as it is after the change (predicted
      in check mode).
    - Each has C(id), C(name), C(path), C(media_types), C(inserted), C(image), C(image_name), C(write_protected),
      C(connected_via), C(mountable), C(mount_method) (V(action) or V(patch)) and C(not_mountable_reason).
  returned: success
  type: list
  elements: dict
  sample:
    - {id: Cd, media_types: [CD, DVD], inserted: true, image: https://media.example.com/maintenance.iso, mountable: true}
    - {id: RDOC1, media_types: [CD, DVD], inserted: false, image: null, mountable: false,
       not_mountable_reason: the BMC takes only uploads or console mounts on this slot (quirks table)}
actions:
  description: What was done (or would be done in check mode), in order.
  returned: success
  type: list
  elements: str
  sample: [eject https://media.example.com/old.iso from slot Cd, insert https://media.example.com/maintenance.iso into slot Cd]
system:
  description: The system whose virtual media was used.
  returned: success
  type: dict
  sample: {id: System.Embedded.1, manufacturer: Dell Inc., model: PowerEdge R650, power_state: 'On', path: /redfish/v1/Systems/System.Embedded.1}
quirks:
  description: Entries of the vendor quirks table that applied to this system (key, effect, reason).
  returned: success
  type: list
  elements: dict
  sample: [{key: dell-eject-not-effective, effect: repeat_eject_until_verified, reason: iDRAC can answer EjectMedia with 204 and keep the image inserted}]
auth_method:
  description: V(session) (a Redfish session was created and deleted), V(basic) or V(none).
  returned: success
  type: str
  sample: session
bmc:
  description: The BMC base URL used.
  returned: always
  type: str
  sample: https://10.0.0.21
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.l3metal.provision.plugins.module_utils._redfish.connection import RedfishClient
from ansible_collections.l3metal.provision.plugins.module_utils._redfish.module_support import redfish_argument_spec, run_redfish
from ansible_collections.l3metal.provision.plugins.module_utils._redfish.vmedia import MEDIA_TYPES, TRANSFER_PROTOCOLS, VirtualMediaManager


def main() -> None:
    module = AnsibleModule(
        argument_spec=redfish_argument_spec(
            state=dict(type='str', choices=['present', 'absent'], default='present'),
            image_url=dict(type='str'),
            media_type=dict(type='str', choices=list(MEDIA_TYPES), default='cd'),
            slot=dict(type='int', default=1),
            eject_all=dict(type='bool', default=False),
            inserted=dict(type='bool', default=True),
            write_protected=dict(type='bool', default=True),
            transfer_protocol=dict(type='str', choices=list(TRANSFER_PROTOCOLS)),
        ),
        required_if=[('state', 'present', ['image_url'])],
        supports_check_mode=True,
    )
    params = module.params
    if params['eject_all'] and params['state'] != 'absent':
        module.fail_json(msg='eject_all: true needs state: absent')
    if params['slot'] < 1:
        module.fail_json(msg='slot: slots are counted from 1, got %d' % params['slot'])
    if params['image_url'] is not None and not params['image_url'].strip():
        module.fail_json(msg='image_url is empty')

    def operation(client: RedfishClient) -> dict:
        manager = VirtualMediaManager(client, check_mode=module.check_mode)
        if params['state'] == 'present':
            outcome = manager.ensure_present(params['image_url'].strip(), params['media_type'], params['slot'], params['inserted'],
                                             params['write_protected'], params['transfer_protocol'])
        elif params['eject_all']:
            outcome = manager.eject_all()
        else:
            url = params['image_url'].strip() if params['image_url'] else None
            outcome = manager.ensure_absent(params['media_type'], params['slot'], url)
        for warning in manager.warnings:
            module.warn(warning)
        result = dict(
            changed=outcome.changed,
            slots=[s.as_dict() for s in outcome.slots],
            actions=outcome.actions,
        )
        if outcome.slot is not None:
            result['slot'] = dict(outcome.slot.as_dict(), index=params['slot'])
        if module._diff:
            result['diff'] = dict(before=dict(slots=outcome.before), after=dict(slots=outcome.after()),
                                  before_header='%s virtual media' % client.base_url, after_header='%s virtual media' % client.base_url)
        return result

    run_redfish(module, operation)


if __name__ == '__main__':
    main()
