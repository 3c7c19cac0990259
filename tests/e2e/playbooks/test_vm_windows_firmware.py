# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""playbooks/firmware_update.yml and provision_windows.yml against VM servers, at the same time (two ansible-playbook
runs, one BMC).  Windows is not booted (it cannot be had here): its disk is checked from the host - the NTFS tree
against the WIM, unattend.xml in Windows/Panther, the boot files on the ESP.  The firmware is "flashed" by the lab
image's FLASH_COMMAND (sha256sum of the file the flasher downloaded from the receiver), seen on the console.  The WIM
comes from a separate Debian docker-registry, not the receiver's /v2/: the dedicated-registry path of a site, tested with
the real node (the Linux fleet uses the embedded one)."""

from __future__ import annotations

import concurrent.futures
import logging
import time

from l3metal_lab.diskcheck import check_windows_disk
from l3metal_lab.lab import role_task
from l3metal_lab.node_images import WIM_INDEX, firmware_image
from l3metal_lab.vmlab import TARGET_DISK, WINDOWS_LAYOUT

LOG = logging.getLogger('e2e')
UNATTEND = ('<?xml version="1.0" encoding="utf-8"?>\n<unattend xmlns="urn:schemas-microsoft-com:unattend">'
            '<!-- l3metal e2e --></unattend>\n')
RUN = {'provision_serial': '100%', 'provision_timeout': 1500}
FIRMWARE, WINDOWS = 2, 3  # l3m-vm-03 (its Linux job failed: its media are still in), l3m-vm-04 (never used)


def node_result(run, host):
    return [task.result['ansible_facts']['provision_node_result'] for task in run.tasks
            if task.host == host and 'provision_node_result' in (task.result.get('ansible_facts') or {})][-1]


def test_firmware_update_and_windows_on_two_vms_at_once(vm_lab, collection_playbook):
    lab = vm_lab
    images = lab.images
    firmware, firmware_sha256 = firmware_image(lab.receiver.media_dir / 'firmware')  # not real firmware (labelled in node_images)
    firmware_inventory = lab.write_inventory(hosts=[FIRMWARE], path=lab.work_dir / 'firmware.yml',
                                             provision_firmware_url='%s/media/firmware/%s' % (lab.guest_receiver_url, firmware.name),
                                             provision_firmware_sha256=firmware_sha256)
    wim = lab.push('windows_wim', 'os-images/windows-lab:1', registry='separate')
    assert wim.endswith(':%d/os-images/windows-lab:1' % lab.separate.port) and lab.separate.port != lab.receiver.port
    windows_inventory = lab.write_inventory(hosts=[WINDOWS], path=lab.work_dir / 'windows.yml', provision_oci_url=wim,
                                            provision_wim_index=WIM_INDEX, provision_target_disk=TARGET_DISK,
                                            provision_partition_layout=WINDOWS_LAYOUT, provision_unattend_xml=UNATTEND,
                                            provision_after_success='power_off')  # nothing bootable here: Windows is not booted
    consoles = {index: lab.console(index).size() for index in (FIRMWARE, WINDOWS)}
    before = lab.inserted(FIRMWARE)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        flashing = pool.submit(collection_playbook, 'firmware_update', firmware_inventory, RUN)
        installing = pool.submit(collection_playbook, 'provision_windows', windows_inventory, RUN)
        firmware_run, windows_run = flashing.result(), installing.result()
    firmware_run.assert_ok()
    windows_run.assert_ok()

    # firmware: a new job (the last one failed), its media replaced the ones the failure left in; the flasher ran
    flashed = node_result(firmware_run, lab.host_name(FIRMWARE))
    assert (flashed['outcome'], flashed['status']) == ('succeeded', 'complete'), flashed
    assert len(lab.jobs(FIRMWARE)) == 2 and before and lab.inserted(FIRMWARE) == {}
    job = lab.receiver.get_job(flashed['job_id'])
    assert job['recipe']['task_target'] == 'firmware-update.target' and job['recipe']['firmware_sha256'] == firmware_sha256
    steps = [e['step'] for e in lab.receiver.events(flashed['job_id']) if e['type'] == 'progress' and e['state'] == 'done']
    assert steps == ['provision-dispatcher.service', 'firmware-flash.service'], steps
    lab.console(FIRMWARE).wait_for(r'%s  \S*%s' % (firmware_sha256, firmware.name), 10, since=consoles[FIRMWARE])
    assert lab.system(FIRMWARE)['PowerState'] == 'On'  # provision_after_success=reboot (the new firmware takes effect)
    lab.power_off(FIRMWARE)

    # windows: EFI/MSR/NTFS, the WIM's image applied, boot files and unattend.xml, then powered off as asked
    installed = node_result(windows_run, lab.host_name(WINDOWS))
    assert (installed['outcome'], installed['status']) == ('succeeded', 'complete'), installed
    steps = [e['step'] for e in lab.receiver.events(installed['job_id']) if e['type'] == 'progress' and e['state'] == 'done']
    assert steps == ['provision-dispatcher.service', 'partition.service', 'image-windows.service', 'bootloader-windows.service',
                     'unattend.service'], steps
    assert role_task(windows_run, "Leave the server as the job's outcome asks").result['power_state'] == 'Off'
    deadline = time.monotonic() + 60
    while lab.system(WINDOWS)['PowerState'] != 'Off':
        assert time.monotonic() < deadline
        time.sleep(1)
    assert images.windows_wim is not None
    disk = check_windows_disk(lab.disk(WINDOWS), images.windows_wim, WIM_INDEX, WINDOWS_LAYOUT, unattend=UNATTEND.encode())
    LOG.info('%s disk:\n%s', lab.host_name(WINDOWS), disk.summary())
    disk.assert_ok()
