#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: redfish_boot
short_description: Set a one-time boot override, reset a server and wait for a power state through Redfish
version_added: 0.1.0
description:
  - Sets the boot source override of the system (O(boot_target)), by default for the next boot only, then optionally
    resets it (O(reset_type)) and waits until it reports a power state (O(wait_power_state)). Each part is optional;
    they run in that order.
  - The override is read back after it is set, before any reset, and returned as RV(boot_override). A target or a
    frequency the BMC did not keep (a C(200) answer to C(Once) that leaves the override C(Disabled)) is sent once more
    without C(BootSourceOverrideMode) (some BMCs keep it only then; not when O(boot_mode) asked for another mode than
    the BMC has); if it still does not hold, the task fails naming the BMC and what it kept, and no reset is sent.
  - With O(boot_target=cd) the slot that holds the boot medium is booted - the one holding O(boot_image_url), else the
    first virtual CD slot (the C(layout.boot) slot of M(l3metal.provision.redfish_virtual_media_info)). Where the BMC
    links its virtual-CD boot options to slots (C(RelatedItem), iDRAC), the option of that slot is used, and a boot
    medium in a slot no option boots fails before anything is changed. RV(boot_medium) tells which slot and option.
  - The override is PATCHed with the C(If-Match) ETag of the read it was decided on; when the resource changed in
    between (HTTP 412) the PATCH is sent once more with the fresh ETag - at once when the refusal carries it (an C(ETag)
    header or the resource as body), else after reading the resource again - then the task fails. A PATCH is never
    re-sent without C(If-Match).
  - An override already in place is not sent again (C(changed=false)). A reset to a power state the system is already
    in (V(On) when on, V(ForceOff) or V(GracefulShutdown) when off) is skipped; a restart of a powered-off system is sent
    as V(On). RV(reset) tells what was sent.
  - Vendor differences come from the quirks table (returned in RV(quirks)) - on Dell the virtual CD is booted
    through the UEFI boot option the BMC lists for it rather than C(Cd) (which can start a physical drive); on
    iDRAC10 the override goes to the C(@Redfish.Settings) object with C(@Redfish.SettingsApplyTime) C(OnReset) and is
    reported as pending until the reset - values the settings object still holds after they were applied (iDRAC10
    keeps them) are not pending, pending is what the BMC says (C(@Redfish.SettingsApplyTime) on the settings object,
    no C(Time)/C(Messages)/C(ETag) of an application in C(@Redfish.Settings)), so a run always ends with the override
    set; on HPE
    an override rejected during POST is retried until O(wait_timeout); on Supermicro the full C(Boot) object is sent
    and C(Cd) becomes C(UsbCd).
author:
  - l3metal.provision contributors (@l3metal)
extends_documentation_fragment:
  - l3metal.provision.redfish
  - l3metal.provision.attributes
attributes:
  check_mode:
    support: full
    details: Reads the override and the power state and reports what would be sent; sends no PATCH or reset and does not wait.
  diff_mode:
    support: full
    details: Shows the boot override and the power state before and after.
options:
  boot_target:
    description:
      - Device to boot from. V(cd) and V(usb) are the virtual media CD and removable disk, V(hdd) the local disk,
        V(pxe) the network. V(none) clears the override (C(BootSourceOverrideEnabled=Disabled)).
    type: str
    choices: [cd, usb, hdd, pxe, none]
  boot_once:
    description:
      - V(true) sets the override for the next boot only (C(Once)); V(false) keeps it (C(Continuous)).
    type: bool
    default: true
  boot_mode:
    description:
      - Firmware mode for the override (C(BootSourceOverrideMode)). By default it is left as the BMC has it.
    type: str
    choices: [uefi, legacy]
  reset_type:
    description:
      - Redfish C(ResetType) to send after the override. It must be one the system lists as allowed.
    type: str
    choices: ['On', ForceOn, ForceOff, GracefulShutdown, GracefulRestart, ForceRestart, PowerCycle, Nmi, PushPowerButton]
  boot_image_url:
    description:
      - With O(boot_target=cd), the URL of the inserted boot medium (the maintenance or installer ISO); the slot that
        holds it is booted. The task fails before any change when no slot holds it, or when the BMC has no boot option
        for that slot.
      - By default the first virtual CD slot is booted (C(layout.boot) of M(l3metal.provision.redfish_virtual_media_info)).
    type: str
  wait_power_state:
    description:
      - Wait until the system reports this C(PowerState), polling with growing intervals (0.5 to 5 seconds).
      - After a restart the BMC may report V(On) before the restart has visibly begun; wait for a later sign of life
        (the provisioning webhook) rather than for the power state alone.
    type: str
    choices: ['On', 'Off']
  wait_timeout:
    description:
      - Seconds to wait for O(wait_power_state), and how long an override rejected during POST is retried (HPE).
    type: int
    default: 300
seealso:
  - module: l3metal.provision.redfish_virtual_media
'''

EXAMPLES = r'''
- name: Boot the node once from the virtual CD that holds the maintenance ISO and power it on
  l3metal.provision.redfish_boot:
    baseuri: "{{ bmc_address }}"
    username: "{{ bmc_user }}"
    password: "{{ bmc_password }}"
    boot_target: cd
    boot_image_url: https://media.example.com/maintenance.iso
    reset_type: ForceRestart
    wait_power_state: 'On'
  delegate_to: localhost

- name: Clear the override and power the node off after provisioning
  l3metal.provision.redfish_boot:
    baseuri: "{{ bmc_address }}"
    username: "{{ bmc_user }}"
    password: "{{ bmc_password }}"
    boot_target: none
    reset_type: GracefulShutdown
    wait_power_state: 'Off'
    wait_timeout: 600
  delegate_to: localhost
'''

RETURN = r'''
boot_override:
  description:
    - The override as the BMC reports it after the change (predicted in check mode).
    - C(pending) is true when it was read from the C(@Redfish.Settings) object (applies at the next reset);
      C(source) is the resource it was read from; C(allowed_targets) what the BMC offers.
  returned: success
  type: dict
  sample: {target: Cd, enabled: Once, mode: UEFI, boot_next: null, uefi_target: null, pending: false,
           source: /redfish/v1/Systems/1, allowed_targets: [None, Pxe, Cd, Usb, Hdd]}
boot_override_before:
  description: The override before the module ran, same shape as RV(boot_override).
  returned: success
  type: dict
boot_request:
  description: The PATCH sent for the override (C(path) and C(body)), null when none was needed.
  returned: success
  type: dict
  sample: {path: /redfish/v1/Systems/System.Embedded.1, body: {Boot: {BootSourceOverrideTarget: UefiTarget,
           BootSourceOverrideEnabled: Once, UefiTargetBootSourceOverride: PciRoot(0x0)/Pci(0x14,0x0)/USB(0xD,0x0)}}}
reset:
  description:
    - C(requested) is O(reset_type); C(sent) the ResetType actually sent (null when skipped); C(skipped) why it was
      skipped; C(power_state_before) the power state before the reset.
  returned: when O(reset_type) is set
  type: dict
  sample: {requested: ForceRestart, sent: 'On', skipped: null, power_state_before: 'Off'}
power_state:
  description: C(PowerState) read after the reset and wait (before them in check mode).
  returned: success
  type: str
  sample: 'On'
waited:
  description: Seconds spent waiting for O(wait_power_state); null when no wait happened.
  returned: success
  type: float
  sample: 4.5
boot_medium:
  description:
    - The slot booted for O(boot_target=cd) (C(slot_id), C(image), C(boot_option), the BootOption used or null), when the
      BMC ties its boot to a slot or O(boot_image_url) was given; null otherwise.
  returned: success
  type: dict
  sample: {slot_id: '1', image: https://media.example.com/maintenance.iso, boot_option: Boot0004}
notes:
  description: How vendor quirks shaped the request, retries that were needed, and why the settings object's values are or are not pending.
  returned: success
  type: list
  elements: str
  sample: [virtual CD booted through BootOption Boot0004 (Virtual Optical Drive) (quirks table: dell-cd-boot-physical-drive)]
system:
  description: Id, path, manufacturer, model and power state (before) of the system.
  returned: success
  type: dict
quirks:
  description: Entries of the vendor quirks table that applied.
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

from ansible_collections.l3metal.provision.plugins.module_utils._redfish.boot import (
    BOOT_MODES,
    BOOT_TARGETS,
    POWER_STATES,
    RESET_TYPES,
    BootManager,
    run_boot,
)
from ansible_collections.l3metal.provision.plugins.module_utils._redfish.connection import RedfishClient
from ansible_collections.l3metal.provision.plugins.module_utils._redfish.module_support import redfish_argument_spec, run_redfish


def main() -> None:
    module = AnsibleModule(
        argument_spec=redfish_argument_spec(
            boot_target=dict(type='str', choices=list(BOOT_TARGETS)),
            boot_once=dict(type='bool', default=True),
            boot_mode=dict(type='str', choices=list(BOOT_MODES)),
            boot_image_url=dict(type='str'),
            reset_type=dict(type='str', choices=list(RESET_TYPES)),
            wait_power_state=dict(type='str', choices=list(POWER_STATES)),
            wait_timeout=dict(type='int', default=300),
        ),
        required_one_of=[('boot_target', 'reset_type', 'wait_power_state')],
        required_by={'boot_image_url': 'boot_target'},
        supports_check_mode=True,
    )
    params = module.params
    if params['wait_timeout'] < 1:
        module.fail_json(msg='wait_timeout must be at least 1 second, got %d' % params['wait_timeout'])
    if params['boot_image_url'] is not None and (not params['boot_image_url'].strip() or params['boot_target'] != 'cd'):
        module.fail_json(msg='boot_image_url: give the URL of the inserted boot medium, with boot_target: cd')

    def operation(client: RedfishClient) -> dict:
        boot = BootManager(client, check_mode=module.check_mode, wait_timeout=params['wait_timeout'])
        system = client.describe_system()
        result = run_boot(boot, params['boot_target'], params['boot_once'], params['boot_mode'],
                          params['boot_image_url'].strip() if params['boot_image_url'] else None,
                          params['reset_type'], params['wait_power_state'], diff=module._diff)
        result['system'] = system
        for warning in boot.warnings:
            module.warn(warning)
        return result

    run_redfish(module, operation)


if __name__ == '__main__':
    main()
