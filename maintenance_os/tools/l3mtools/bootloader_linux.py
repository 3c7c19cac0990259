# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""bootloader-linux.service: install GRUB into the new system from inside it (chroot).

Mounts the new system as image-linux did, bind-mounts /dev, /proc, /sys and /run into it, and runs
the new system's own grub-install (or grub2-install) and grub-mkconfig:

- UEFI (an ESP in the layout): ``--target=x86_64-efi --no-nvram``, plus the removable-media copy
  EFI/BOOT/BOOTX64.EFI so the disk boots even without a firmware boot entry;
- BIOS, when the layout has a BIOS boot partition (ef02): ``--target=i386-pc <disk>``.

The firmware boot entry is made by efibootmgr from this container (only when booted in UEFI mode).
"""

from __future__ import annotations

import contextlib
import os
import sys
import typing as t

from . import blockdev, efi, layout
from .common import ToolError, env, main_wrapper, run
from .image_linux import NEW_ROOT

BIND_MOUNTS = ('/dev', '/proc', '/sys', '/run')


def os_release_id(root: str) -> str:
    for path in ('etc/os-release', 'usr/lib/os-release'):
        try:
            with open(os.path.join(root, path), encoding='utf-8') as handle:
                for line in handle:
                    if line.startswith('ID='):
                        return line.split('=', 1)[1].strip().strip('"\'') or 'linux'
        except OSError:
            continue
    return 'linux'


def grub_tool(root: str, names: t.Sequence[str]) -> str:
    for name in names:
        for directory in ('usr/sbin', 'usr/bin', 'sbin', 'bin'):
            if os.path.exists(os.path.join(root, directory, name)):
                return '/' + directory + '/' + name
    raise ToolError('the new system has none of %s: install GRUB in the OS image (e.g. grub-efi-amd64-bin and grub-pc-bin)' % ', '.join(names))


def grub_commands(root: str, disk: str, parts: t.Sequence[layout.Partition]) -> list[list[str]]:
    """What to run inside the chroot, in order."""
    install = grub_tool(root, ('grub-install', 'grub2-install'))
    mkconfig = grub_tool(root, ('grub-mkconfig', 'grub2-mkconfig'))
    grub_dir = '/boot/grub2' if install.endswith('grub2-install') else '/boot/grub'
    commands = []
    esp = layout.esp(parts)
    if esp is not None:
        efi_dir = next((mp for mp, part in layout.mounts(parts) if part == esp), '/boot/efi')
        common = [install, '--target=x86_64-efi', '--efi-directory=' + efi_dir, '--bootloader-id=' + os_release_id(root), '--no-nvram']
        commands.append(common)
        commands.append(common[:3] + ['--removable', '--no-nvram'])
    if layout.bios_boot(parts) is not None:
        commands.append([install, '--target=i386-pc', disk])
    if not commands:
        raise ToolError('the layout has neither an ESP (ef00) nor a BIOS boot partition (ef02): nothing to install GRUB to')
    commands.append([mkconfig, '-o', grub_dir + '/grub.cfg'])
    return commands


@contextlib.contextmanager
def chroot_binds(root: str) -> t.Iterator[None]:
    done = []
    try:
        for path in BIND_MOUNTS:
            target = os.path.join(root, path.lstrip('/'))
            os.makedirs(target, exist_ok=True)
            run(['mount', '--rbind', path, target])
            run(['mount', '--make-rslave', target], check=False)
            done.append(target)
        yield
    finally:
        for target in reversed(done):
            run(['umount', '-R', target], check=False)


def add_boot_entry(root: str, disk: str, parts: t.Sequence[layout.Partition]) -> None:
    esp = layout.esp(parts)
    if esp is not None:
        distro = os_release_id(root)
        efi.add_boot_entry(disk, esp.number, distro, '\\EFI\\%s\\grubx64.efi' % distro, '/EFI/BOOT/BOOTX64.EFI')


def install(root: str, disk: str, parts: t.Sequence[layout.Partition]) -> list[list[str]]:
    commands = grub_commands(root, disk, parts)
    with chroot_binds(root):
        for argv in commands:
            run(['chroot', root] + argv)
    add_boot_entry(root, disk, parts)
    return commands


def main() -> None:
    disk = blockdev.resolve_disk(env('TARGET_DISK'))
    parts = layout.load()
    with blockdev.target_mounted(disk, layout.mounts(parts), NEW_ROOT) as root:
        install(root, disk, parts)


if __name__ == '__main__':
    sys.exit(main_wrapper(main, 'bootloader-linux'))
