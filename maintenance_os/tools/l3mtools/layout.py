# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The partition layout (layout.json = the recipe's partition_layout) and the roles of its partitions."""

from __future__ import annotations

import typing as t

from .common import ToolError, read_json

ESP_TYPES = {'ef00', 'c12a7328-f81f-11d2-ba4b-00a0c93ec93b'}
BIOS_BOOT_TYPES = {'ef02', '21686148-6449-6e6f-744e-656564454649'}
MSR_TYPES = {'0c01', 'e3c9e316-0b5c-4db8-817d-f92df00215ae'}
LINUX_ROOT_FILESYSTEMS = ('ext4', 'ext3', 'xfs', 'btrfs')
CONFIG_DRIVE_LABEL = 'cidata'


class Partition(t.NamedTuple):
    number: int
    size: str
    type_guid: str
    format: str | None = None
    label: str | None = None
    mountpoint: str | None = None

    @property
    def type_key(self) -> str:
        return self.type_guid.lower()


def parse(data: t.Any) -> list[Partition]:
    if not isinstance(data, list) or not data:
        raise ToolError('layout.json must be a non-empty list of partitions (the recipe\'s partition_layout)')
    parts = []
    for index, item in enumerate(data):
        if not isinstance(item, dict) or not isinstance(item.get('size'), str) or not isinstance(item.get('type_guid'), str):
            raise ToolError('layout.json entry %d needs size and type_guid strings' % index)
        parts.append(Partition(index + 1, item['size'], item['type_guid'], item.get('format'), item.get('label'), item.get('mountpoint')))
    return parts


def load() -> list[Partition]:
    return parse(read_json('layout.json'))


def esp(parts: t.Sequence[Partition]) -> Partition | None:
    return next((p for p in parts if p.type_key in ESP_TYPES), None)


def bios_boot(parts: t.Sequence[Partition]) -> Partition | None:
    return next((p for p in parts if p.type_key in BIOS_BOOT_TYPES), None)


def config_drive(parts: t.Sequence[Partition]) -> Partition | None:
    return next((p for p in parts if (p.label or '').lower() == CONFIG_DRIVE_LABEL), None)


def windows(parts: t.Sequence[Partition]) -> Partition | None:
    """The partition Windows is applied to: the first NTFS partition."""
    return next((p for p in parts if p.format == 'ntfs'), None)


def mounts(parts: t.Sequence[Partition]) -> list[tuple[str, Partition]]:
    """(mountpoint, partition) for the installed Linux system, parents before children.

    Explicit mountpoints win.  Without any, the first Linux root filesystem is / and the ESP is
    /boot/efi (the design's example layout has no mountpoints); the config drive is never mounted.
    """
    explicit = [(p.mountpoint, p) for p in parts if p.mountpoint]
    if not any(mountpoint == '/' for mountpoint, _part in explicit):
        root = next((p for p in parts if p.format in LINUX_ROOT_FILESYSTEMS and not p.mountpoint and p != config_drive(parts)), None)
        if root is None:
            raise ToolError('the layout has no root filesystem: give a partition mountpoint "/" or format ext4/xfs/btrfs')
        explicit.append(('/', root))
    boot_efi = esp(parts)
    if boot_efi is not None and not boot_efi.mountpoint and boot_efi.format == 'vfat':
        explicit.append(('/boot/efi', boot_efi))
    return sorted(explicit, key=lambda item: (item[0].rstrip('/').count('/') if item[0] != '/' else 0, item[0]))
