# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""partition.service: wipe TARGET_DISK, create the GPT layout of layout.json, make the filesystems.

Sizes are sgdisk sizes (512M, 20G; K/M/G/T are binary units); 100% is the rest of the disk (last
partition only, the recipe validator enforces it).  type_guid is an sgdisk type code (ef00, 8300,
0c01, ef02, ...) or a full GPT type GUID; label is both the GPT partition name and the filesystem label.
"""

from __future__ import annotations

import os
import sys

from . import blockdev, layout
from .common import ToolError, env, log, main_wrapper, run

_UNITS = {'K': 1 << 10, 'M': 1 << 20, 'G': 1 << 30, 'T': 1 << 40}
FAT32_MIN_BYTES = 64 * 1024 * 1024  # below this mkfs.vfat -F 32 would have too few clusters


def size_bytes(size: str) -> int | None:
    """Bytes of a fixed size such as 512M; None for 100%."""
    if size.endswith('%'):
        return None
    return int(size[:-1]) * _UNITS[size[-1].upper()]


def sgdisk_args(parts: list[layout.Partition]) -> list[str]:
    args = ['--clear']
    for part in parts:
        end = '0' if size_bytes(part.size) is None else '+' + part.size.upper()
        args += ['--new=%d:0:%s' % (part.number, end), '--typecode=%d:%s' % (part.number, part.type_guid)]
        if part.label:
            args.append('--change-name=%d:%s' % (part.number, part.label))
    return args


def mkfs_argv(part: layout.Partition, device: str) -> list[str] | None:
    label = part.label
    fmt = part.format
    if fmt is None:
        return None
    if fmt == 'vfat':
        fat32 = part.type_key in layout.ESP_TYPES and (size_bytes(part.size) or FAT32_MIN_BYTES) >= FAT32_MIN_BYTES
        return ['mkfs.vfat'] + (['-F', '32'] if fat32 else []) + (['-n', label] if label else []) + [device]
    if fmt in ('ext4', 'ext3'):
        return ['mkfs.' + fmt, '-q', '-F'] + (['-L', label] if label else []) + [device]
    if fmt in ('xfs', 'btrfs'):
        return ['mkfs.' + fmt, '-f'] + (['-L', label] if label else []) + [device]
    if fmt == 'ntfs':
        return ['mkfs.ntfs', '-Q', '-F'] + (['-L', label] if label else []) + [device]
    if fmt == 'swap':
        return ['mkswap'] + (['-L', label] if label else []) + [device]
    raise ToolError('partition %d: unsupported format %r' % (part.number, fmt))


def existing_partitions(disk: str) -> list[str]:
    name = os.path.basename(disk)
    sys_dir = os.path.join(blockdev.SYS_BLOCK, name)
    try:
        children = sorted(os.listdir(sys_dir))
    except OSError:
        return []
    return ['/dev/' + child for child in children if os.path.exists(os.path.join(sys_dir, child, 'partition'))]


def wipe(disk: str) -> None:
    """Remove old filesystem signatures (each old partition, then the disk) and both GPT copies."""
    for node in existing_partitions(disk):
        if os.path.exists(node):
            run(['wipefs', '--all', '--quiet', node], check=False)
    run(['wipefs', '--all', '--force', '--quiet', disk])
    run(['sgdisk', '--zap-all', disk])
    run(['partx', '-d', disk], check=False)


def partition(disk: str, parts: list[layout.Partition]) -> list[str]:
    """Partition and format; return the partition nodes."""
    wipe(disk)
    run(['sgdisk'] + sgdisk_args(parts) + [disk])
    blockdev.reread_partitions(disk)
    nodes = blockdev.wait_for_nodes(disk, [p.number for p in parts])
    for part, node in zip(parts, nodes, strict=True):
        # a new partition can start where an old filesystem did: clear what the table wipe left
        run(['wipefs', '--all', '--quiet', node], check=False)
        argv = mkfs_argv(part, node)
        if argv:
            run(argv)
    run(['sgdisk', '--verify', disk])
    return nodes


def main() -> None:
    disk = blockdev.resolve_disk(env('TARGET_DISK'))
    parts = layout.load()
    log('partitioning %s: %d partitions' % (disk, len(parts)))
    partition(disk, parts)


if __name__ == '__main__':
    sys.exit(main_wrapper(main, 'partition'))
