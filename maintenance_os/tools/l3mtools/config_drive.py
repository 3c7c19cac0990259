# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""config-drive.service: the cloud-init NoCloud config drive.

Writes user-data and meta-data (instance-id = the job id) from /run/provision into the partition
labelled cidata.  cloud-init finds it by that filesystem label; vfat is what NoCloud reads besides
iso9660.  A cidata partition without a filesystem is formatted here.
"""

from __future__ import annotations

import sys
import tempfile

from . import blockdev, fat, layout
from .common import ToolError, env, log, main_wrapper, read_input, run

EMPTY_USER_DATA = b'#cloud-config\n{}\n'


def write_config_drive(device: str, user_data: bytes, meta_data: bytes, network_config: bytes | None = None) -> None:
    fstype = blockdev.fs_value(device, 'TYPE')
    if fstype is None:
        run(['mkfs.vfat', '-n', 'CIDATA', device])
    elif fstype != 'vfat':
        raise ToolError('the cidata partition %s holds %s; NoCloud needs vfat (set format: vfat in the layout)' % (device, fstype))
    with tempfile.TemporaryDirectory(prefix='l3mtools-cidata-') as work:
        fat.write_bytes(device, user_data, '/user-data', work)
        fat.write_bytes(device, meta_data, '/meta-data', work)
        if network_config is not None:
            fat.write_bytes(device, network_config, '/network-config', work)


def main() -> None:
    disk = blockdev.resolve_disk(env('TARGET_DISK'))
    parts = layout.load()
    part = layout.config_drive(parts)
    if part is None:
        raise ToolError('the partition layout has no partition labelled cidata for the config drive (add one, e.g. 16M vfat label cidata)')
    if part.format not in (None, 'vfat'):
        raise ToolError('partition %d (cidata) has format %s; the NoCloud config drive needs vfat' % (part.number, part.format))
    device = blockdev.partition_node(disk, part.number)
    user_data = read_input('user-data', required=False)
    if user_data is None:
        log('no user-data in the recipe: writing an empty cloud-config')
        user_data = EMPTY_USER_DATA
    meta = read_input('meta-data')
    if meta is None:  # read_input raises for required files; kept for the type checker
        raise ToolError('meta-data is missing')
    write_config_drive(device, user_data, meta, read_input('network-config', required=False))
    log('config drive written to %s' % device)


if __name__ == '__main__':
    sys.exit(main_wrapper(main, 'config-drive'))
