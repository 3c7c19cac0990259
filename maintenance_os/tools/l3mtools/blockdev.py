# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Block devices: partition nodes of the target disk, telling the kernel about a new table, mounts."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
import typing as t

from .common import ToolError, log, output, run

SYS_BLOCK = '/sys/class/block'


def resolve_disk(disk: str) -> str:
    """The kernel device node behind TARGET_DISK (follows /dev/disk/by-id/... links); must be a whole disk."""
    real = os.path.realpath(disk)
    if not os.path.exists(real):
        raise ToolError('target disk %s does not exist (target_disk in the recipe)' % disk)
    name = os.path.basename(real)
    if os.path.exists(os.path.join(SYS_BLOCK, name, 'partition')):
        raise ToolError('target disk %s is a partition (%s), not a whole disk' % (disk, real))
    return real


def partition_node(disk: str, number: int) -> str:
    """/dev/sda + 2 -> /dev/sda2; /dev/nvme0n1 or /dev/loop0 + 2 -> ...p2.  sysfs first, the naming rule otherwise."""
    real = os.path.realpath(disk)
    name = os.path.basename(real)
    sys_dir = os.path.join(SYS_BLOCK, name)
    try:
        for child in sorted(os.listdir(sys_dir)):
            part_file = os.path.join(sys_dir, child, 'partition')
            if os.path.exists(part_file):
                with open(part_file, encoding='ascii') as handle:
                    if handle.read().strip() == str(number):
                        return '/dev/' + child
    except OSError:
        pass
    separator = 'p' if name[-1:].isdigit() else ''
    return '%s%s%d' % (real, separator, number)


def reread_partitions(disk: str) -> None:
    """Make the kernel see the new table: partx (update, then add) works where BLKRRPART does not (loop devices, busy disks)."""
    if run(['partx', '-u', disk], check=False).returncode != 0:
        run(['partx', '-a', disk], check=False)
    if shutil.which('udevadm') and os.path.exists('/run/udev/control'):
        run(['udevadm', 'settle', '--timeout=30'], check=False)


def wait_for_nodes(disk: str, numbers: t.Iterable[int], timeout: float = 30.0, sleep: t.Callable[[float], None] = time.sleep) -> list[str]:
    """Poll until every partition node exists and is a block device; return them in order."""
    wanted = list(numbers)
    deadline = time.monotonic() + timeout
    while True:
        nodes = [partition_node(disk, n) for n in wanted]
        missing = [node for node in nodes if not os.path.exists(node)]
        if not missing:
            return nodes
        if time.monotonic() >= deadline:
            raise ToolError('partition nodes did not appear within %d s: %s' % (timeout, ', '.join(missing)))
        sleep(0.2)


def fs_value(device: str, tag: str) -> str | None:
    """UUID, TYPE, LABEL ... of the filesystem on device, read by blkid without its cache."""
    value = output(['blkid', '-c', '/dev/null', '-o', 'value', '-s', tag, device], check=False).strip()
    return value or None


@contextlib.contextmanager
def mounted(device: str, target: str | None = None, fstype: str | None = None, options: str | None = None) -> t.Iterator[str]:
    """Mount device (at a temporary directory unless target), yield the path, always unmount."""
    created = target is None
    path = target or tempfile.mkdtemp(prefix='l3mtools-mnt-')
    os.makedirs(path, exist_ok=True)
    argv = ['mount']
    if fstype:
        argv += ['-t', fstype]
    if options:
        argv += ['-o', options]
    run(argv + [device, path])
    try:
        yield path
    finally:
        run(['umount', path], check=False)
        if created:
            with contextlib.suppress(OSError):
                os.rmdir(path)


@contextlib.contextmanager
def ntfs_mounted(device: str, read_only: bool = False) -> t.Iterator[str]:
    """Mount NTFS with ntfs-3g (FUSE; the kernel's ntfs3 is not everywhere), always unmount."""
    path = tempfile.mkdtemp(prefix='l3mtools-ntfs-')
    run(['ntfs-3g'] + (['-o', 'ro'] if read_only else []) + [device, path])
    try:
        yield path
    finally:
        run(['umount', path], check=False)
        with contextlib.suppress(OSError):
            os.rmdir(path)


def _make_dirs(path: str) -> list[str]:
    """os.makedirs, returning the directories it created (outermost first)."""
    missing = []
    current = path
    while not os.path.isdir(current):
        missing.append(current)
        current = os.path.dirname(current)
    os.makedirs(path, exist_ok=True)
    return list(reversed(missing))


@contextlib.contextmanager
def target_mounted(disk: str, plan: t.Sequence[tuple[str, t.Any]], root: str) -> t.Iterator[str]:
    """Mount every (mountpoint, partition) of plan under root in order; unmount in reverse.

    When the body fails, the mount point directories this created on the new system's filesystems
    are removed again, so a failed step leaves those filesystems as it found them."""
    done: list[tuple[str, list[str]]] = []  # (mounted path, directories created for it on the filesystem below)
    failed = False
    try:
        for mountpoint, part in plan:
            path = os.path.join(root, mountpoint.lstrip('/'))
            created = _make_dirs(path)
            try:
                run(['mount', partition_node(disk, part.number), path])
            except BaseException:
                _remove_dirs(created)
                raise
            done.append((path, created))
        yield root
    except BaseException:
        failed = True
        raise
    finally:
        for path, created in reversed(done):
            if run(['umount', path], check=False).returncode != 0:
                log('warning: could not unmount %s' % path)
            elif failed:  # the filesystem holding them is still mounted (the parents come later)
                _remove_dirs(created)


def _remove_dirs(created: t.Sequence[str]) -> None:
    for path in reversed(created):
        with contextlib.suppress(OSError):
            os.rmdir(path)
