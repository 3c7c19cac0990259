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
  - The override is read back after it is set and returned as RV(boot_override); a target the BMC did not take fails
    the task, a frequency it did not keep (for example C(Continuous) instead of C(Once)) is a warning.
  - An override already in place is not sent again (C(changed=false)). A reset to a power state the system is already
    in (V(On) when on, V(ForceOff) or V(GracefulShutdown) when off) is skipped; a restart of a powered-off system is sent
    as V(On). RV(reset) tells what was sent.
  - Vendor differences come from the quirks table (returned in RV(quirks)) - on Dell the virtual CD is booted
    through the UEFI boot option the BMC lists for it rather than C(Cd) (which can start a physical drive); on
    iDRAC10 the override goes to the C(@Redfish.Settings) object and is reported as pending until the reset; on HPE
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
- name: Boot the node once from the virtual CD and power it on
  l3metal.provision.redfish_boot:
    baseuri: "{{ bmc_address }}"
    username: "{{ bmc_user }}"
    password: "{{ bmc_password }}"
    boot_target: cd
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
notes:
  description: How vendor quirks shaped the request.
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

import dataclasses

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.l3metal.provision.plugins.module_utils._redfish.boot import BOOT_MODES, BOOT_TARGETS, POWER_STATES, RESET_TYPES, BootManager
from ansible_collections.l3metal.provision.plugins.module_utils._redfish.connection import RedfishClient
from ansible_collections.l3metal.provision.plugins.module_utils._redfish.module_support import redfish_argument_spec, run_redfish


def main() -> None:
    module = AnsibleModule(
        argument_spec=redfish_argument_spec(
            boot_target=dict(type='str', choices=list(BOOT_TARGETS)),
            boot_once=dict(type='bool', default=True),
            boot_mode=dict(type='str', choices=list(BOOT_MODES)),
            reset_type=dict(type='str', choices=list(RESET_TYPES)),
            wait_power_state=dict(type='str', choices=list(POWER_STATES)),
            wait_timeout=dict(type='int', default=300),
        ),
        required_one_of=[('boot_target', 'reset_type', 'wait_power_state')],
        supports_check_mode=True,
    )
    params = module.params
    if params['wait_timeout'] < 1:
        module.fail_json(msg='wait_timeout must be at least 1 second, got %d' % params['wait_timeout'])

    def operation(client: RedfishClient) -> dict:
        boot = BootManager(client, check_mode=module.check_mode, wait_timeout=params['wait_timeout'])
        system = client.describe_system()
        before = boot.read_override()
        power_before = boot.power_state
        after = before
        changed = False
        request = None
        notes: list[str] = []
        if params['boot_target']:
            plan = boot.plan(params['boot_target'], params['boot_once'], params['boot_mode'], before)
            notes = plan.notes
            if not boot.satisfied(plan, before):
                changed = True
                request = dict(path=plan.path, body={'Boot': plan.payload})
                if module.check_mode:
                    after = _predicted(before, plan.payload)
                else:
                    boot.apply(plan)
                    boot.refresh()
                    after = boot.read_override()
                    boot.verify(plan, after)
        result: dict = dict(boot_override_before=before.as_dict(), boot_override=after.as_dict(), boot_request=request, notes=notes)
        reset_sent = False
        if params['reset_type']:
            reset = boot.reset(params['reset_type'])
            reset_sent = reset.sent is not None
            changed = changed or reset_sent
            result['reset'] = reset.as_dict()
        waited = None
        if params['wait_power_state'] and not module.check_mode:
            waited = boot.wait_power(params['wait_power_state'])
        elif reset_sent and not module.check_mode:
            boot.refresh()
        result.update(
            changed=changed,
            power_state=boot.power_state,
            waited=waited,
            system=system,
        )
        for warning in boot.warnings:
            module.warn(warning)
        if module._diff:
            result['diff'] = dict(
                before=dict(boot_override=_diffable(before.as_dict()), power_state=power_before),
                after=dict(boot_override=_diffable(after.as_dict()), power_state=_predicted_power(result, power_before, module.check_mode)),
            )
        return result

    run_redfish(module, operation)


def _predicted(before, payload: dict):
    keys = {'BootSourceOverrideTarget': 'target', 'BootSourceOverrideEnabled': 'enabled', 'BootSourceOverrideMode': 'mode',
            'BootNext': 'boot_next', 'UefiTargetBootSourceOverride': 'uefi_target'}
    return dataclasses.replace(before, **{keys[k]: v for k, v in payload.items() if k in keys})


def _diffable(override: dict) -> dict:
    return {k: v for k, v in override.items() if k != 'allowed_targets'}


def _predicted_power(result: dict, power_before, check_mode: bool):
    reset = result.get('reset') or {}
    if check_mode and reset.get('sent'):
        return 'Off' if reset['sent'] in ('ForceOff', 'GracefulShutdown') else 'On'
    return result['power_state']


if __name__ == '__main__':
    main()
