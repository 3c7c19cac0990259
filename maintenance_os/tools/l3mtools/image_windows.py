# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""image-windows.service: fetch the .wim artifact and apply image WIM_INDEX onto the NTFS partition.

wimapply writes straight into the unmounted NTFS volume through libntfs-3g, which keeps what a
mounted copy would lose (security descriptors, alternate data streams, reparse points, short names).
The fetch (streamed, digest-checked) is the collection's OCI code (oci.pull_blob_to_file).
"""

from __future__ import annotations

import os
import sys

from . import blockdev, layout, oci
from .common import ToolError, env, log, main_wrapper, run

WIM_CACHE_VARIABLE = 'WIM_CACHE_DIR'


def apply_wim(wim: str, device: str, index: int) -> None:
    info = run(['wimlib-imagex', 'info', wim], capture=True).stdout.decode('utf-8', 'replace')
    count = next((int(line.split(':', 1)[1]) for line in info.splitlines() if line.strip().startswith('Image Count')), 1)
    if not 1 <= index <= count:
        raise ToolError('wim_index %d is not in %s, which holds %d image%s' % (index, wim, count, '' if count == 1 else 's'))
    run(['wimapply', wim, str(index), device])


def windows_partition(disk: str) -> str:
    part = layout.windows(layout.load())
    if part is None:
        raise ToolError('the partition layout has no ntfs partition to apply Windows to')
    return blockdev.partition_node(disk, part.number)


def main() -> None:
    disk = blockdev.resolve_disk(env('TARGET_DISK'))
    reference = env('OCI_URL')
    index = int(env('WIM_INDEX', '1'))
    device = windows_partition(disk)
    cache = os.environ.get(WIM_CACHE_VARIABLE, '/var/tmp')
    wim = os.path.join(cache, 'install.wim')
    log('fetching %s to %s' % (reference, wim))
    result = oci.pull_blob_to_file(reference, wim)
    log('fetched manifest %s (%d bytes downloaded)' % (result.digest, result.bytes_downloaded))
    try:
        apply_wim(wim, device, index)
    finally:
        os.unlink(wim)


if __name__ == '__main__':
    sys.exit(main_wrapper(main, 'image-windows'))
