# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Workflow A on a real boot: the maintenance ISO the role built, in QEMU, installs Debian on a blank virtual disk.

Nothing on the node is simulated.  The VM boots the live ISO from CD 1 (dracut dmsquash-live, rd.live.ram=1), systemd
starts provision-dispatcher.service, which finds the task CD (CD 2, made by task_iso's backend) by label, checks the
recipe and starts install-linux.target; partition, image-linux, bootloader-linux and config-drive each run as a Quadlet
container from the ISO's read-only image store.  image-linux pulls a real Debian rootfs (kernel, GRUB, cloud-init) from
a real registry on the host loopback, every step reports to the real receiver with webhooks signed with the job's
token (the receiver rejects anything else), and systemd's OnSuccess= hook sends ``succeeded``.

Then the host reads the disk back (l3metal_lab.diskcheck: GPT, file systems, rootfs files, fstab and grub.cfg by UUID,
GRUB's BIOS boot code in the MBR and core.img, EFI/BOOT/BOOTX64.EFI, the config drive), and the VM boots the installed
disk with no CDs: GRUB, the kernel and cloud-init run the recipe's user-data, which writes a marker with the job id to
the serial console.

A second boot gets an OCI reference that does not exist: image-linux fails for real, and the job ends ``failed`` with
that unit's name and its real journal tail, sent by the real OnFailure= unit.
"""

from __future__ import annotations

import json
import os
import time
import typing as t
from pathlib import Path

import pytest

from l3metal_lab import diskcheck, node_images
from l3metal_lab.provisioner import NodeJob, b64, build_medium, linux_recipe
from l3metal_lab.receiver import step_durations
from l3metal_lab.qemu import Vm

pytestmark = pytest.mark.timeout(2400)
STEPS = ['partition.service', 'image-linux.service', 'bootloader-linux.service', 'config-drive.service']
DISK = '/dev/vda'
TOOLS_REGISTRY = 'registry.example.com/l3metal/tools'   # what the Quadlet files name (the ISO's image store holds it)
# BIOS by default: the VM lab's fleet boots UEFI through the BMC (issue 13), and each boot here costs ~4 min of TCG.
# L3METAL_E2E_FIRMWARES=bios,uefi runs both.
FIRMWARES = [name.strip() for name in os.environ.get('L3METAL_E2E_FIRMWARES', 'bios').split(',') if name.strip()]
JOB_DEADLINE = 1200        # TCG on 2 shared cores: ~3-4 min when quiet (docs/maintenance_os.md has the figures)


@pytest.fixture(scope='module')
def linux_image(registry) -> str:
    """The lab's Debian rootfs (kernel, GRUB, cloud-init) pushed with the collection's push code, as the guest names it."""
    return node_images.push_linux_image(registry)


def run_job(vm: Vm, job: NodeJob, artifacts: Path, deadline: float = JOB_DEADLINE) -> tuple[dict[str, t.Any], list[dict[str, t.Any]], float]:
    """Wait for the job to end (or the VM to stop); keep the job record; return (job, events, seconds since power-on)."""
    end = time.monotonic() + deadline
    state = job.state()
    while state['status'] not in ('failed', 'succeeded') and time.monotonic() < end and vm.running:
        time.sleep(2)
        state = job.state()
    seconds = vm.elapsed()
    events = job.receiver.events(job.job_id)
    (artifacts / 'job.json').write_text(json.dumps({'job': state, 'events': events, 'seconds': seconds}, indent=2))
    return state, events, seconds


@pytest.mark.parametrize('firmware', FIRMWARES)
def test_the_iso_installs_linux_on_a_blank_disk_and_the_disk_boots(lab_iso, receiver, linux_image, artifacts, accel, firmware):
    user_data = node_images.linux_user_data()
    job = NodeJob(receiver, linux_recipe(target_disk=DISK, oci_url=linux_image, partition_layout=node_images.LINUX_LAYOUT,
                                         user_data=b64(user_data)))
    medium = build_medium(artifacts / 'task.iso', job.recipe(), 'iso')
    vm = Vm(artifacts / 'vm', firmware=firmware, serial=job.serial, live_iso=lab_iso.path, task_iso=medium, disk_size='4G', accel=accel)
    try:
        vm.start()
        state, events, seconds = run_job(vm, job, artifacts)
        assert state['status'] == 'succeeded', 'job %s (failed step %s: %s) after %.0f s (VM running: %s); last 50 console lines:\n%s' % (
            state['status'], state.get('failed_step'), state.get('reason'), seconds, vm.running, vm.tail(50))
    finally:
        vm.stop()
        (artifacts / 'console-tail.txt').write_text(vm.tail(200))

    # Every report is the node's, signed with the job's token (the receiver verified each signature), in systemd's order.
    node = [event for event in events if event['source'] == 'node']
    assert [e['status'] for e in events if e['type'] == 'status'] == ['queued', 'provisioning', 'succeeded']
    progress = [(e['step'], e['state']) for e in node if e['type'] == 'progress']
    assert progress == [('provision-dispatcher.service', 'done')] + [(step, state) for step in STEPS for state in ('started', 'done')], progress
    console = vm.console()
    for step in STEPS:      # each step ran as its Quadlet container from the ISO's image store (no pull at boot)
        name = step.rsplit('.', 1)[0]
        assert 'image=%s/%s:' % (TOOLS_REGISTRY, name) in console, 'no container of %s on the console' % name
    durations = step_durations(events)

    # The host reads the disk back: nothing above is trusted for what is on it.
    report = diskcheck.check_linux_disk(vm.disk, node_images.LINUX_LAYOUT, firmware=firmware, job_id=job.job_id, user_data=user_data,
                                        expect_files=('/etc/fstab', '/boot/grub/grub.cfg', node_images.LINUX_RELEASE_FILE))
    (artifacts / 'diskcheck.txt').write_text(report.summary() + '\n')
    report.assert_ok()
    if firmware == 'bios':
        assert report['bios boot code'].ok and report['bios core.img'].ok

    # The installed disk boots on its own: GRUB, the kernel, cloud-init with the config drive's user-data.
    disk_vm = Vm(artifacts / 'vm', firmware=firmware, serial=job.serial, disk=vm.disk, boot='disk', accel=accel)
    try:
        disk_vm.start()
        booted = disk_vm.wait_for_console('%s job=%s' % (node_images.CLOUD_INIT_MARKER, job.job_id), timeout=600)
    finally:
        disk_vm.stop()
        (artifacts / 'disk-console-tail.txt').write_text(disk_vm.tail(200))
    figures = {'firmware': firmware, 'power_on_to_succeeded_s': round(seconds, 1), 'steps_s': durations,
               'installed_disk_to_cloud_init_s': round(booted, 1), 'iso_mib': round(lab_iso.size / 2**20, 1)}
    (artifacts / 'timings.json').write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures))


def test_a_step_that_fails_for_real_fails_the_job_with_its_unit_and_journal(lab_iso, receiver, linux_image, artifacts, accel):
    missing = linux_image.rsplit('/', 1)[0] + '/does-not-exist:404'
    job = NodeJob(receiver, linux_recipe(target_disk=DISK, oci_url=missing, partition_layout=node_images.LINUX_LAYOUT))
    medium = build_medium(artifacts / 'task.iso', job.recipe(), 'iso')
    vm = Vm(artifacts / 'vm', firmware='bios', serial=job.serial, live_iso=lab_iso.path, task_iso=medium, disk_size='2G', accel=accel)
    try:
        vm.start()
        state, events, seconds = run_job(vm, job, artifacts)
    finally:
        vm.stop()
        (artifacts / 'console-tail.txt').write_text(vm.tail(200))
    assert state['status'] == 'failed', 'job %s after %.0f s; last 50 console lines:\n%s' % (state['status'], seconds, vm.tail(50))
    assert state['failed_step'] == 'image-linux.service', state
    assert state['reason'] == 'image-linux.service failed', state['reason']
    tail = state['log_tail']
    # the real journal of the unit: the tool's own error line and systemd's lines about the unit, up to OnFailure=
    assert 'image-linux: error: pull_and_unpack of %s failed: manifest %s: not found' % (missing, missing) in tail, tail
    assert "image-linux.service: Failed with result 'exit-code'." in tail and 'Triggering OnFailure= dependencies' in tail, tail
    progress = [(e['step'], e['state']) for e in events if e['type'] == 'progress']
    assert progress[-2:] == [('partition.service', 'done'), ('image-linux.service', 'started')], progress
    assert [e['source'] for e in events if e.get('status') == 'failed'] == ['node']
    print('failed at image-linux.service %.0f s after power-on' % seconds)
