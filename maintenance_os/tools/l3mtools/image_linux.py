# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""image-linux.service: mount the new system's filesystems, unpack the rootfs artifact, write fstab.

The pull and unpack (streamed, digest-checked) is the collection's OCI code (oci.pull_and_unpack);
this step decides where it goes and makes the result mountable by UUID.
"""

from __future__ import annotations

import os
import sys
import typing as t

from . import blockdev, layout, oci
from .common import ToolError, env, log, main_wrapper

# Where the new system is mounted inside the step's container (NEW_ROOT overrides it, e.g. for tests).
NEW_ROOT = os.environ.get('NEW_ROOT', '/mnt/new-root')
FSTAB_HEADER = '# Written by the l3metal image-linux step: filesystems by UUID, from the recipe\'s partition_layout.\n'


def fstab_line(mountpoint: str, fstype: str, uuid: str) -> str:
    if fstype == 'swap':
        return 'UUID=%s none swap sw 0 0' % uuid
    if fstype == 'vfat':
        return 'UUID=%s %s vfat umask=0077,shortname=winnt 0 %d' % (uuid, mountpoint, 1 if mountpoint == '/' else 2)
    passno = 0 if fstype in ('xfs', 'btrfs') else (1 if mountpoint == '/' else 2)
    return 'UUID=%s %s %s defaults 0 %d' % (uuid, mountpoint, fstype, passno)


def fstab(disk: str, parts: t.Sequence[layout.Partition]) -> str:
    lines = []
    for mountpoint, part in layout.mounts(parts):
        device = blockdev.partition_node(disk, part.number)
        uuid = blockdev.fs_value(device, 'UUID')
        fstype = blockdev.fs_value(device, 'TYPE') or part.format or 'auto'
        if uuid is None:
            raise ToolError('%s (%s) has no filesystem UUID: was it formatted?' % (device, mountpoint))
        lines.append(fstab_line(mountpoint, fstype, uuid))
    for part in parts:
        if part.format == 'swap':
            uuid = blockdev.fs_value(blockdev.partition_node(disk, part.number), 'UUID')
            if uuid:
                lines.append(fstab_line('none', 'swap', uuid))
    return FSTAB_HEADER + '\n'.join(lines) + '\n'


def write_fstab(root: str, disk: str, parts: t.Sequence[layout.Partition]) -> str:
    text = fstab(disk, parts)
    os.makedirs(os.path.join(root, 'etc'), exist_ok=True)
    with open(os.path.join(root, 'etc', 'fstab'), 'w', encoding='utf-8') as handle:
        handle.write(text)
    return text


def main() -> None:
    disk = blockdev.resolve_disk(env('TARGET_DISK'))
    reference = env('OCI_URL')
    parts = layout.load()
    with blockdev.target_mounted(disk, layout.mounts(parts), NEW_ROOT) as root:
        log('unpacking %s into %s' % (reference, root))
        result = oci.pull_and_unpack(reference, root)
        log('unpacked manifest %s (%d bytes downloaded)' % (result.digest, result.bytes_downloaded))
        log(write_fstab(root, disk, parts))


if __name__ == '__main__':
    sys.exit(main_wrapper(main, 'image-linux'))
