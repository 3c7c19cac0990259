# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""playbooks/provision_windows.yml and firmware_update.yml: the recipes they build from host variables go through the
same flow as Linux (tested in test_provision_linux.py); the node's dispatcher accepts them and runs their targets."""

from __future__ import annotations

from l3metal_lab.lab import role_task
from l3metal_lab.media import pycdlib_tree

UNATTEND = '<?xml version="1.0"?>\n<unattend xmlns="urn:schemas-microsoft-com:unattend"/>\n'
FAST = {'provision_serial': '100%', 'provision_max_fail_percentage': 100, 'provision_timeout': 90}


def test_windows_and_firmware(provisioning_lab, collection_playbook):
    lab = provisioning_lab
    windows = lab.write_inventory(hosts=[0], path=lab.work_dir / 'windows.yml', provision_oci_url='registry.example.com/os-images/windows-wim:2022',
                                  provision_wim_index=2, provision_unattend_xml=UNATTEND, provision_after_success='none')
    firmware = lab.write_inventory(hosts=[1], path=lab.work_dir / 'firmware.yml', provision_firmware_url='http://firmware.example.com/bios-1.2.bin',
                                   provision_firmware_sha256='ab' * 32)
    node = lab.simulate(0)
    run = collection_playbook('provision_windows', windows, FAST).assert_ok()
    report = node.result()
    assert report['outcome'] == 'succeeded' and report['target'] == 'install-windows.target'
    assert report['steps'] == ['partition.service', 'image-windows.service', 'bootloader-windows.service', 'unattend.service']
    files = pycdlib_tree(report['medium'], 'rr')
    assert files['unattend.xml'].decode() == UNATTEND
    job = lab.receiver.get_job(lab.jobs(0)[0]['job_id'])
    assert job['status'] == 'complete' and job['recipe']['wim_index'] == 2 and job['recipe']['partition_layout'][2]['format'] == 'ntfs'
    assert role_task(run, "Leave the server as the job's outcome asks").status == 'skipped'  # provision_after_success=none

    # the firmware recipe is valid and would run; check mode keeps the BMC and the receiver untouched
    check = collection_playbook('firmware_update', firmware, FAST, check=True).assert_ok()
    checked = role_task(check, 'Check the recipe before the receiver or the BMC is contacted').result['recipe']
    assert checked == {'task_target': 'firmware-update.target', 'firmware_url': 'http://firmware.example.com/bios-1.2.bin',
                       'firmware_sha256': 'ab' * 32}
    assert lab.jobs(1) == [] and not [r for r in lab.changing_requests() if lab.bmc.system_ids[1] in r]
