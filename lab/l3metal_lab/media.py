# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Read task media back, with pycdlib and with independent tools (xorriso, isoinfo, mtools).

This kernel cannot mount iso9660 or vfat, so tests read images in user space.  Every reader
returns ``{path: bytes}`` with paths relative to the root, so trees can be compared directly.
"""

from __future__ import annotations

import io
import subprocess
import typing as t
from pathlib import Path

import pycdlib


def pycdlib_tree(image: Path, tree: str) -> dict[str, bytes]:
    """Files of one tree of an ISO: ``iso9660`` (names as recorded, with ``;1``), ``joliet`` or ``rr``."""
    iso = pycdlib.PyCdlib()
    iso.open(str(image))
    try:
        files: dict[str, bytes] = {}
        facade: t.Any
        if tree == 'rr':
            facade = iso.get_rock_ridge_facade()
        elif tree == 'joliet':
            facade = iso.get_joliet_facade()
        else:
            facade = iso.get_iso9660_facade()
        stack = ['/']
        while stack:
            directory = stack.pop()
            for child in facade.list_children(**{'rr_path' if tree == 'rr' else 'joliet_path' if tree == 'joliet' else 'iso_path': directory}):
                if child is None or child.is_dot() or child.is_dotdot():
                    continue
                if tree == 'rr':
                    name = child.rock_ridge.name().decode('utf-8')
                elif tree == 'joliet':
                    name = child.file_identifier().decode('utf-16_be')
                else:
                    name = child.file_identifier().decode('ascii')
                path = directory.rstrip('/') + '/' + name
                if child.is_dir():
                    stack.append(path)
                    continue
                out = io.BytesIO()
                facade.get_file_from_iso_fp(out, **{'rr_path' if tree == 'rr' else 'joliet_path' if tree == 'joliet' else 'iso_path': path})
                files[path.lstrip('/')] = out.getvalue()
        return files
    finally:
        iso.close()


def xorriso_extract(image: Path, dest: Path) -> dict[str, bytes]:
    """Extract with xorriso (it reads Rock Ridge names) and return the files."""
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(['xorriso', '-osirrox', 'on', '-indev', str(image), '-extract', '/', str(dest)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return {str(path.relative_to(dest)): path.read_bytes() for path in sorted(dest.rglob('*')) if path.is_file()}


def isoinfo_names(image: Path, mode: str = '') -> list[str]:
    """Paths as genisoimage's isoinfo lists them: mode '' (plain ISO 9660), '-J' (Joliet) or '-R' (Rock Ridge)."""
    argv = ['isoinfo', '-f', '-i', str(image)] + ([mode] if mode else [])
    out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    return sorted(line.strip().lstrip('/') for line in out.splitlines() if line.strip())


def isoinfo_read(image: Path, iso_path: str) -> bytes:
    """One file's bytes by its plain ISO 9660 path (``/KS.CFG;1``), read by isoinfo."""
    return subprocess.run(['isoinfo', '-i', str(image), '-x', iso_path], check=True, stdout=subprocess.PIPE).stdout


def isoinfo_volume_id(image: Path) -> str:
    out = subprocess.run(['isoinfo', '-d', '-i', str(image)], check=True, stdout=subprocess.PIPE, text=True).stdout
    for line in out.splitlines():
        if line.startswith('Volume id:'):
            return line.split(':', 1)[1].strip()
    raise AssertionError('isoinfo printed no volume id:\n' + out)


def fat_files(image: Path, dest: Path) -> dict[str, bytes]:
    """Copy every file out of a FAT image with mtools (``mcopy -s``) and return them."""
    dest.mkdir(parents=True, exist_ok=True)
    env = {'MTOOLS_SKIP_CHECK': '1', 'MTOOLSRC': '/dev/null', 'PATH': '/usr/bin:/bin'}
    subprocess.run(['mcopy', '-s', '-n', '-i', str(image), '::/*', str(dest) + '/'], check=True, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return {str(path.relative_to(dest)): path.read_bytes() for path in sorted(dest.rglob('*')) if path.is_file()}


def fat_label(image: Path) -> str:
    env = {'MTOOLS_SKIP_CHECK': '1', 'MTOOLSRC': '/dev/null', 'PATH': '/usr/bin:/bin'}
    out = subprocess.run(['mlabel', '-s', '-i', str(image), '::'], check=True, env=env, stdout=subprocess.PIPE, text=True).stdout
    return out.replace('Volume label is', '').strip()
