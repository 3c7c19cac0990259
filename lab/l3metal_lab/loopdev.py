# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Sparse disk images on loop devices, and reading back what tools wrote to them.

This kernel has no partition-table parsers: ``losetup -P`` gives no partition nodes, ``partx -a``
does.  vfat cannot be mounted (mtools reads it), NTFS is read through ntfs-3g (FUSE).
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import tempfile
import typing as t
from pathlib import Path

from .prerequisites import require

MTOOLS_ENV = dict(os.environ, MTOOLS_SKIP_CHECK='1', MTOOLSRC='/dev/null')


def sh(*argv: str, check: bool = True, env: t.Mapping[str, str] | None = None) -> str:
    proc = subprocess.run(list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False, env=env)
    if check and proc.returncode != 0:
        raise AssertionError('%s failed (exit %d):\n%s' % (' '.join(argv), proc.returncode, proc.stdout))
    return proc.stdout


class LoopDisk:
    def __init__(self, image: Path, size: str) -> None:
        self.image = image
        self.size = size
        self.device: str | None = None

    def attach(self) -> LoopDisk:
        require(os.geteuid() == 0, 'loop devices need root')
        sh('truncate', '-s', self.size, str(self.image))
        self.device = sh('losetup', '--find', '--show', str(self.image)).strip()
        return self

    def detach(self) -> None:
        if self.device:
            sh('partx', '-d', self.device, check=False)
            sh('losetup', '-d', self.device, check=False)
            self.device = None

    @property
    def dev(self) -> str:
        if self.device is None:
            raise AssertionError('loop device is not attached')
        return self.device

    def part(self, number: int) -> str:
        return '%sp%d' % (self.dev, number)

    def gpt(self) -> list[dict[str, str]]:
        """Partitions as sgdisk reports them: number, start, end, code, name."""
        out = sh('sgdisk', '-p', self.dev)
        rows = []
        for line in out.splitlines():
            match = re.match(r'^\s+(\d+)\s+(\d+)\s+(\d+)\s+\S+ \S+\s+([0-9A-F]{4})\s*(.*)$', line)
            if match:
                rows.append({'number': match.group(1), 'start': match.group(2), 'end': match.group(3), 'code': match.group(4), 'name': match.group(5).strip()})
        return rows

    def blkid(self, number: int) -> dict[str, str]:
        out = sh('blkid', '-c', '/dev/null', '-o', 'export', self.part(number), check=False)
        return dict(line.split('=', 1) for line in out.splitlines() if '=' in line)


def fat_files(device: str) -> dict[str, bytes]:
    """Every file on a FAT filesystem (device or image), read with mtools."""
    listing = subprocess.run(['mdir', '-b', '-i', device, '::/'], capture_output=True, text=True, env=MTOOLS_ENV, check=True).stdout
    if not listing.strip():
        return {}  # mcopy of '::/*' fails on an empty filesystem
    with tempfile.TemporaryDirectory() as work:
        sh('mcopy', '-s', '-n', '-i', device, '::/*', work + '/', env=MTOOLS_ENV)
        root = Path(work)
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob('*')) if p.is_file()}


@contextlib.contextmanager
def mounted(device: str, ntfs: bool = False) -> t.Iterator[Path]:
    """Mount read-only (NTFS through ntfs-3g/FUSE), yield the mount point, always unmount."""
    with tempfile.TemporaryDirectory() as mnt:
        sh(*(['ntfs-3g'] if ntfs else ['mount']), '-o', 'ro', device, mnt)
        try:
            yield Path(mnt)
        finally:
            sh('umount', mnt, check=False)


def ntfs_mounted(device: str) -> t.ContextManager[Path]:
    return mounted(device, ntfs=True)
