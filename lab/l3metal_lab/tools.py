# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run the maintenance OS tool entrypoints (python3 -m l3mtools.<step>) as their containers would."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import typing as t
from pathlib import Path

from l3metal_oci import push as _oci_push

from .registry import Registry


# This kernel has no vfat driver.  For the image-linux step, which mounts the ESP at /boot/efi before the
# unpack, these two programs stand in for it: "mount DEV DIR" of a FAT filesystem mounts a tmpfs at DIR
# (seeded from DEV with mtools), and "umount DIR" writes DIR's tree back onto DEV with mtools first.
# Anything else goes to the real mount/umount.  Tests read the ESP back with mtools, as always.
VFAT_MOUNT = """#!/bin/sh
STATE=%(state)s
if [ $# -eq 2 ] && [ "$(blkid -c /dev/null -o value -s TYPE "$1")" = vfat ]; then
    %(mount)s -t tmpfs -o mode=0755 l3m-test-vfat "$2" || exit 32
    realpath "$2" > "$STATE/$(basename "$1")"
    MTOOLS_SKIP_CHECK=1 MTOOLSRC=/dev/null mcopy -s -n -m -i "$1" '::/*' "$2/" 2>/dev/null
    exit 0
fi
exec %(mount)s "$@"
"""
VFAT_UMOUNT = """#!/bin/sh
STATE=%(state)s
if [ $# -eq 1 ]; then
    target=$(realpath "$1")
    for record in "$STATE"/*; do
        [ -f "$record" ] && [ "$(cat "$record")" = "$target" ] || continue
        device=/dev/$(basename "$record")
        find "$target" -mindepth 1 -maxdepth 1 -exec env MTOOLS_SKIP_CHECK=1 MTOOLSRC=/dev/null mcopy -s -o -m -i "$device" {} ::/ \\; || exit 32
        rm -f "$record"
    done
fi
exec %(umount)s "$@"
"""


def vfat_stand_in(directory: Path) -> Path:
    """A directory with the ``mount``/``umount`` stand-ins above; put it first on the step's PATH."""
    state = directory / 'state'
    state.mkdir(parents=True)
    values = {'state': state, 'mount': shutil.which('mount'), 'umount': shutil.which('umount')}
    for name, text in (('mount', VFAT_MOUNT), ('umount', VFAT_UMOUNT)):
        (directory / name).write_text(text % values)
        (directory / name).chmod(0o755)
    return directory


def run_tool(step: str, run_dir: Path, env: t.Mapping[str, str], timeout: float = 300, path_first: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``python3 -m l3mtools.<step>`` with recipe.env's variables in ``env``; ``path_first`` goes before PATH (vfat_stand_in)."""
    environment = dict(os.environ, PROVISION_RUN_DIR=str(run_dir))
    if path_first is not None:
        environment['PATH'] = '%s:%s' % (path_first, environment.get('PATH', '/usr/bin:/bin'))
    environment.update(env)
    return subprocess.run([sys.executable, '-m', 'l3mtools.' + step], env=environment, capture_output=True, text=True, timeout=timeout, check=False)


def push_file(registry: Registry, repository: str, path: Path, tag: str = '1.0') -> tuple[str, str]:
    """Push ``path`` as a one-layer artifact with the collection's push code (what oci_artifact state=present does);
    returns (reference, the layer's digest)."""
    reference = '%s/%s:%s' % (registry.host, repository, tag)
    result = _oci_push.push_artifact(reference, [_oci_push.PushFile(str(path))], **registry.client_options())
    return reference, result.manifest['layers'][0]['digest']
