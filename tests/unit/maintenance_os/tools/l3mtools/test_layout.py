# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Partition roles, mount plans, sgdisk and mkfs arguments, fstab lines, GRUB commands, flash commands."""

from __future__ import annotations

import pytest

from l3mtools import bootloader_linux, firmware, image_linux, layout, partition
from l3mtools.common import ToolError

DESIGN = layout.parse([{'size': '512M', 'type_guid': 'ef00', 'format': 'vfat'}, {'size': '16M', 'type_guid': '8300', 'format': 'vfat', 'label': 'cidata'},
                       {'size': '100%', 'type_guid': '8300', 'format': 'ext4'}])


def test_roles_and_mount_plan():
    assert layout.esp(DESIGN).number == 1
    assert layout.config_drive(DESIGN).number == 2
    assert [(mp, p.number) for mp, p in layout.mounts(DESIGN)] == [('/', 3), ('/boot/efi', 1)]
    explicit = layout.parse([{'size': '1G', 'type_guid': '8300', 'format': 'ext4', 'mountpoint': '/boot'},
                             {'size': '100M', 'type_guid': 'EF00', 'format': 'vfat', 'mountpoint': '/boot/efi'},
                             {'size': '100%', 'type_guid': '8300', 'format': 'xfs', 'mountpoint': '/'}])
    assert [(mp, p.number) for mp, p in layout.mounts(explicit)] == [('/', 3), ('/boot', 1), ('/boot/efi', 2)]
    with pytest.raises(ToolError, match='no root filesystem'):
        layout.mounts(layout.parse([{'size': '100%', 'type_guid': '0700', 'format': 'ntfs'}]))
    with pytest.raises(ToolError, match='non-empty list'):
        layout.parse({})


def test_sgdisk_and_mkfs_arguments():
    assert partition.sgdisk_args(DESIGN) == ['--clear', '--new=1:0:+512M', '--typecode=1:ef00', '--new=2:0:+16M', '--typecode=2:8300',
                                             '--change-name=2:cidata', '--new=3:0:0', '--typecode=3:8300']
    assert partition.mkfs_argv(DESIGN[0], '/dev/x1') == ['mkfs.vfat', '-F', '32', '/dev/x1']
    assert partition.mkfs_argv(DESIGN[1], '/dev/x2') == ['mkfs.vfat', '-n', 'cidata', '/dev/x2']  # small: FAT type left to mkfs
    assert partition.mkfs_argv(DESIGN[2], '/dev/x3') == ['mkfs.ext4', '-q', '-F', '/dev/x3']
    assert partition.mkfs_argv(layout.Partition(1, '1G', '0700', 'ntfs', 'Windows'), 'd') == ['mkfs.ntfs', '-Q', '-F', '-L', 'Windows', 'd']
    assert partition.mkfs_argv(layout.Partition(1, '1M', 'ef02'), 'd') is None
    assert partition.size_bytes('2G') == 2 << 30 and partition.size_bytes('100%') is None


def test_fstab_lines():
    assert image_linux.fstab_line('/', 'ext4', 'U') == 'UUID=U / ext4 defaults 0 1'
    assert image_linux.fstab_line('/srv', 'xfs', 'U') == 'UUID=U /srv xfs defaults 0 0'
    assert image_linux.fstab_line('/boot/efi', 'vfat', 'U') == 'UUID=U /boot/efi vfat umask=0077,shortname=winnt 0 2'
    assert image_linux.fstab_line('none', 'swap', 'U') == 'UUID=U none swap sw 0 0'


def fake_root(tmp_path, tools=('usr/sbin/grub-install', 'usr/sbin/grub-mkconfig')):
    for tool in tools:
        (tmp_path / tool).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / tool).write_text('')
    (tmp_path / 'etc').mkdir(exist_ok=True)
    (tmp_path / 'etc' / 'os-release').write_text('NAME="Debian"\nID=debian\n')
    return str(tmp_path)


def test_grub_commands_for_uefi_and_bios(tmp_path):
    root = fake_root(tmp_path)
    both = layout.parse([{'size': '1M', 'type_guid': 'ef02'}, {'size': '100M', 'type_guid': 'ef00', 'format': 'vfat'},
                         {'size': '100%', 'type_guid': '8300', 'format': 'ext4'}])
    assert bootloader_linux.grub_commands(root, '/dev/sda', both) == [
        ['/usr/sbin/grub-install', '--target=x86_64-efi', '--efi-directory=/boot/efi', '--bootloader-id=debian', '--no-nvram'],
        ['/usr/sbin/grub-install', '--target=x86_64-efi', '--efi-directory=/boot/efi', '--removable', '--no-nvram'],
        ['/usr/sbin/grub-install', '--target=i386-pc', '/dev/sda'],
        ['/usr/sbin/grub-mkconfig', '-o', '/boot/grub/grub.cfg'],
    ]
    bios_only = layout.parse([{'size': '1M', 'type_guid': '21686148-6449-6E6F-744E-656564454649'}, {'size': '100%', 'type_guid': '8300', 'format': 'ext4'}])
    assert [c[1] for c in bootloader_linux.grub_commands(root, '/dev/sda', bios_only)] == ['--target=i386-pc', '-o']
    with pytest.raises(ToolError, match='neither an ESP'):
        bootloader_linux.grub_commands(root, '/dev/sda', layout.parse([{'size': '100%', 'type_guid': '8300', 'format': 'ext4'}]))


def test_grub_must_be_in_the_new_system(tmp_path):
    with pytest.raises(ToolError, match='has none of grub-install, grub2-install'):
        bootloader_linux.grub_commands(fake_root(tmp_path, ()), '/dev/sda', DESIGN)


def test_flash_command():
    assert firmware.flash_argv('sum -c UpdateBios --file {firmware}', '/t/f.rom') == ['sum', '-c', 'UpdateBios', '--file', '/t/f.rom']
    assert firmware.flash_argv('socflash -s', '/t/f.rom') == ['socflash', '-s', '/t/f.rom']
    assert firmware.file_name('https://h/a/b/BIOS_X11.zip?sig=1') == 'BIOS_X11.zip'
    assert firmware.file_name('https://h/') == 'firmware.bin'
    with pytest.raises(ToolError, match='cannot be split'):
        firmware.flash_argv('sum "unclosed', 'f')
