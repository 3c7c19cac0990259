# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The host-side disk checks the e2e tests rely on (l3metal_lab.diskcheck), on disks made here without a VM.

Each disk is built the way the steps would leave it (sgdisk; file systems made in images of the partitions, written
with debugfs, mtools, wimlib and ntfs-3g, then copied in at the partitions' offsets), then changed in one place: the
report must name exactly that place.  The VM e2e tests run the same checks on disks the real steps provisioned.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from l3metal_lab import diskcheck, node_images
from l3metal_lab.prerequisites import require

JOB = 'job-0123'
USER_DATA = node_images.linux_user_data()
MIB = 1 << 20


def sh(*argv, **kwargs):
    return subprocess.run([str(a) for a in argv], check=True, capture_output=True, **kwargs)


def offsets(disk):
    return {part.number: part for part in diskcheck.gpt_partitions(disk)[0]}


def make_linux_disk(path: Path, layout=node_images.LINUX_LAYOUT) -> Path:
    """A disk as workflow A leaves it, minus GRUB's boot code: GPT, file systems, root files with fstab by UUID, cidata.
    Each file system is made in an image file of its partition's size and copied in at the partition's offset."""
    with open(path, 'wb') as handle:
        handle.truncate(400 * MIB)
    argv = ['sgdisk']
    for number, part in enumerate(layout, 1):
        size = '0' if part['size'] == '100%' else '+' + part['size']
        argv += ['-n', '%d:0:%s' % (number, size), '-t', '%d:%s' % (number, part['type_guid'])]
        if part.get('label'):
            argv += ['-c', '%d:%s' % (number, part['label'])]
    sh(*argv, path)
    parts = offsets(path)
    work = path.parent / 'files'
    work.mkdir(exist_ok=True)
    volumes = {}
    for number, part in enumerate(layout, 1):
        if not part.get('format'):
            continue
        volume = work / ('p%d.img' % number)
        with open(volume, 'wb') as handle:
            handle.truncate(parts[number].size)
        if part['format'] == 'vfat':
            sh('mkfs.vfat', *(['-F', '32'] if parts[number].size >= 64 * MIB else []), '-n', part['label'], volume)
        else:
            sh('mkfs.ext4', '-q', '-F', '-L', part['label'], volume)
        volumes[number] = volume
    root_uuid = sh('blkid', '-o', 'value', '-s', 'UUID', volumes[4]).stdout.decode().strip()
    esp_uuid = sh('blkid', '-o', 'value', '-s', 'UUID', volumes[2]).stdout.decode().strip()
    (work / 'fstab').write_text('UUID=%s / ext4 defaults 0 1\nUUID=%s /boot/efi vfat umask=0077 0 2\n' % (root_uuid, esp_uuid))
    (work / 'grub.cfg').write_text('menuentry "Debian" {\n\tlinux\t/boot/vmlinuz-6.1 root=UUID=%s ro\n}\n' % root_uuid)
    (work / 'vmlinuz').write_bytes(b'kernel')
    for command in ('mkdir /etc', 'mkdir /boot', 'mkdir /boot/grub', 'write %s /etc/fstab' % (work / 'fstab'),
                    'write %s /boot/grub/grub.cfg' % (work / 'grub.cfg'), 'write %s /boot/vmlinuz-6.1' % (work / 'vmlinuz')):
        sh('debugfs', '-w', '-R', command, volumes[4])
    env = dict(os.environ, **diskcheck.MTOOLS_ENV)
    sh('mmd', '-i', volumes[2], '::/EFI', '::/EFI/BOOT', '::/EFI/debian', env=env)
    (work / 'efi').write_bytes(b'MZ efi')
    for name in ('EFI/BOOT/BOOTX64.EFI', 'EFI/debian/grubx64.efi'):
        sh('mcopy', '-i', volumes[2], work / 'efi', '::/' + name, env=env)
    (work / 'user-data').write_bytes(USER_DATA)
    (work / 'meta-data').write_text('instance-id: "%s"\n' % JOB)
    for name in ('user-data', 'meta-data'):
        sh('mcopy', '-i', volumes[3], work / name, '::/' + name, env=env)
    for number, volume in volumes.items():
        copy_in(path, volume, parts[number].start)
    return path


def copy_in(disk: Path, volume: Path, offset: int) -> None:
    sh('dd', 'if=%s' % volume, 'of=%s' % disk, 'bs=1M', 'seek=%d' % (offset // MIB), 'conv=notrunc', 'status=none')


def failed(report):
    return sorted(check.name for check in report.failures)


@pytest.fixture
def linux_disk(tmp_path):
    return make_linux_disk(tmp_path / 'disk.img')


def test_a_disk_as_the_linux_steps_leave_it_passes_all_but_the_boot_code_it_lacks(linux_disk):
    report = diskcheck.check_linux_disk(linux_disk, node_images.LINUX_LAYOUT, 'uefi', JOB, USER_DATA)
    # grub-install never ran on this disk: the BIOS boot code checks must fail, and say what they found
    assert failed(report) == ['bios boot code', 'bios core.img', 'core.img in /boot/grub/i386-pc']
    assert 'MBR boot code lacks the GRUB boot.img string' in report['bios boot code'].detail
    for name in ('partition count', 'p4 size', 'fstab: / by UUID', 'fstab: /boot/efi by UUID', 'grub.cfg boots root=UUID',
                 'ESP: EFI/BOOT/BOOTX64.EFI', 'ESP: grubx64.efi of the distribution', 'cidata: meta-data instance-id is the job id',
                 "cidata: user-data is the recipe's", 'root: kernel in /boot'):
        assert report[name].ok, report.summary()
    with pytest.raises(AssertionError, match=r'3 of \d+ disk checks failed .*\nFAIL bios boot code: MBR boot code lacks'):
        report.assert_ok()


def test_grub_boot_code_in_the_mbr_and_the_bios_boot_partition_is_found(linux_disk, tmp_path):
    boot_img = Path('/usr/lib/grub/i386-pc/boot.img')
    core = Path('/usr/lib/grub/i386-pc/diskboot.img')
    require(boot_img.is_file() and core.is_file(), 'grub-pc-bin is needed for its boot images')
    with open(linux_disk, 'r+b') as raw:   # what grub-install writes: boot.img's code area, then core.img from diskboot.img on
        raw.write(boot_img.read_bytes()[:440])
        raw.seek(offsets(linux_disk)[1].start)
        raw.write(core.read_bytes() + os.urandom(30000))
    report = diskcheck.check_linux_disk(linux_disk, node_images.LINUX_LAYOUT, 'bios', JOB, USER_DATA)
    assert report['bios boot code'].ok and report['bios core.img'].ok, report.summary()
    assert failed(report) == ['core.img in /boot/grub/i386-pc']


@pytest.mark.parametrize('change, names', [
    ('wrong job', ['cidata: meta-data instance-id is the job id']),
    ('other user-data', ["cidata: user-data is the recipe's"]),
    ('other layout', ['p3 size']),
])
def test_a_difference_from_the_recipe_is_named(linux_disk, change, names):
    layout = [dict(part) for part in node_images.LINUX_LAYOUT]
    job, user_data = JOB, USER_DATA
    if change == 'wrong job':
        job = 'job-9999'
    elif change == 'other user-data':
        user_data = b'#cloud-config\n{}\n'
    else:
        layout[2]['size'] = '32M'
    report = diskcheck.check_linux_disk(linux_disk, layout, 'uefi', job, user_data)
    assert [name for name in failed(report) if 'bios' not in name and 'core.img' not in name] == names


def test_fstab_naming_another_file_system_fails(linux_disk, tmp_path):
    root = offsets(linux_disk)[4]
    volume = tmp_path / 'files' / 'p4.img'
    (tmp_path / 'fstab2').write_text('UUID=00000000-0000-0000-0000-000000000000 / ext4 defaults 0 1\n')
    sh('debugfs', '-w', '-R', 'rm /etc/fstab', volume)
    sh('debugfs', '-w', '-R', 'write %s /etc/fstab' % (tmp_path / 'fstab2'), volume)
    copy_in(linux_disk, volume, root.start)
    report = diskcheck.check_linux_disk(linux_disk, node_images.LINUX_LAYOUT, 'uefi', JOB, USER_DATA)
    assert 'fstab: / by UUID' in failed(report) and 'fstab: /boot/efi by UUID' in failed(report)


def make_windows_disk(path: Path, wim: Path, index: int) -> Path:
    """A disk as workflow B leaves it: GPT (ESP, MSR, NTFS), the WIM image applied to the NTFS partition with wimlib,
    unattend.xml in Panther (ntfs-3g), the boot files on the ESP (mtools)."""
    layout = node_images.WINDOWS_LAYOUT
    with open(path, 'wb') as handle:
        handle.truncate(400 * MIB)
    sh('sgdisk', '-n', '1:0:+260M', '-t', '1:ef00', '-c', '1:SYSTEM', '-n', '2:0:+16M', '-t', '2:0c01', '-n', '3:0:0', '-t', '3:0700',
       '-c', '3:Windows', path)
    parts = offsets(path)
    esp, ntfs = parts[1], parts[3]
    esp_volume = path.parent / 'esp.img'
    with open(esp_volume, 'wb') as handle:
        handle.truncate(esp.size)
    sh('mkfs.vfat', '-F', '32', '-n', 'SYSTEM', esp_volume)
    volume = path.parent / 'ntfs.img'
    with open(volume, 'wb') as handle:
        handle.truncate(ntfs.size)
    sh('mkntfs', '-Q', '-F', '-q', '-L', layout[2]['label'], volume)
    sh('wimapply', wim, index, volume)
    mountpoint = path.parent / 'ntfs'
    mountpoint.mkdir()
    sh('ntfs-3g', volume, mountpoint)
    try:
        (mountpoint / 'Windows' / 'Panther').mkdir()
        (mountpoint / 'Windows' / 'Panther' / 'unattend.xml').write_bytes(node_images.UNATTEND)
    finally:
        sh('umount', mountpoint)
    env = dict(os.environ, **diskcheck.MTOOLS_ENV)
    sh('mmd', '-i', esp_volume, '::/EFI', '::/EFI/Boot', '::/EFI/Microsoft', '::/EFI/Microsoft/Boot', env=env)
    boot = path.parent / 'bootmgfw.efi'
    boot.write_bytes(diskcheck.wim_file(wim, index, '/Windows/Boot/EFI/bootmgfw.efi'))
    sh('mcopy', '-i', esp_volume, boot, '::/EFI/Boot/bootx64.efi', env=env)
    sh('mcopy', '-i', esp_volume, boot, '::/EFI/Microsoft/Boot/BCD', env=env)
    copy_in(path, volume, ntfs.start)
    copy_in(path, esp_volume, esp.start)
    return path


def test_the_windows_checks_compare_the_ntfs_tree_with_the_wim_image(tmp_path):
    require(os.geteuid() == 0, 'ntfs-3g on a loop device needs root')
    wim = node_images.windows_wim(tmp_path / 'cache')
    disk = make_windows_disk(tmp_path / 'disk.img', wim, 2)
    report = diskcheck.check_windows_disk(disk, wim, 2, node_images.WINDOWS_LAYOUT, node_images.UNATTEND).assert_ok()
    assert 'NTFS tree = WIM image 2' in [check.name for check in report.checks]
    other = diskcheck.check_windows_disk(disk, wim, 1, node_images.WINDOWS_LAYOUT, node_images.UNATTEND)
    # index 1 has the same paths but other content: the boot file on the ESP is image 2's, not image 1's
    assert failed(other) == ["ESP: EFI/Boot/bootx64.efi is the image's bootmgfw.efi"]
    without = diskcheck.check_windows_disk(disk, wim, 2, node_images.WINDOWS_LAYOUT, None)
    assert failed(without) == ['NTFS tree = WIM image 2'] and 'extra [\'/Windows/Panther\'' in without['NTFS tree = WIM image 2'].detail
