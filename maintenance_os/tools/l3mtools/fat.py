# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Write files into FAT filesystems with GNU mtools: no mount, so no vfat kernel module and no mount namespace games."""

from __future__ import annotations

import os

from .common import output, run

MTOOLS_ENV = {'MTOOLS_SKIP_CHECK': '1', 'MTOOLSRC': '/dev/null'}


def make_dirs(device: str, path: str) -> None:
    """Create ::/a, ::/a/b, ... (existing ones are fine)."""
    parts = [p for p in path.strip('/').split('/') if p]
    for depth in range(1, len(parts) + 1):
        run(['mmd', '-i', device, '::/' + '/'.join(parts[:depth])], check=False, env_extra=MTOOLS_ENV)


def copy_file(device: str, source: str, dest: str) -> None:
    make_dirs(device, os.path.dirname(dest))
    run(['mcopy', '-o', '-i', device, source, '::/' + dest.lstrip('/')], env_extra=MTOOLS_ENV)


def copy_tree(device: str, source_dir: str, dest_dir: str) -> list[str]:
    """Copy the contents of source_dir to dest_dir on the FAT filesystem; return the paths written."""
    written = []
    for current, dirs, files in os.walk(source_dir):
        dirs.sort()
        rel = os.path.relpath(current, source_dir)
        target = dest_dir.rstrip('/') + ('' if rel == '.' else '/' + rel)
        make_dirs(device, target)
        for name in sorted(files):
            copy_file(device, os.path.join(current, name), target + '/' + name)
            written.append(target + '/' + name)
    return written


def write_bytes(device: str, data: bytes, dest: str, work_dir: str) -> None:
    local = os.path.join(work_dir, os.path.basename(dest))
    with open(local, 'wb') as handle:
        handle.write(data)
    copy_file(device, local, dest)


def listing(device: str) -> list[str]:
    """Every file and directory path on the filesystem, as mtools prints them (``::/EFI/BOOT/BOOTX64.EFI``)."""
    out = output(['mdir', '-/', '-b', '-i', device, '::/'], check=False)
    return sorted(line.strip() for line in out.splitlines() if line.strip())
