# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""unattend.service: copy /run/provision/unattend.xml to Windows/Panther/unattend.xml on the new Windows volume.

Windows Setup reads Windows/Panther/unattend.xml first when the installed image boots (specialize
and oobeSystem passes).
"""

from __future__ import annotations

import os
import sys

from . import blockdev, layout
from .common import ToolError, env, log, main_wrapper, read_input
from .winfs import find_path


def place_unattend(windows_root: str, data: bytes) -> str:
    windows_dir = find_path(windows_root, 'Windows')
    if windows_dir is None:
        raise ToolError('the Windows partition has no Windows directory: was the image applied?')
    panther = find_path(windows_dir, 'Panther') or os.path.join(windows_dir, 'Panther')
    os.makedirs(panther, exist_ok=True)
    path = os.path.join(panther, 'unattend.xml')
    with open(path, 'wb') as handle:
        handle.write(data)
    return path


def main() -> None:
    disk = blockdev.resolve_disk(env('TARGET_DISK'))
    windows = layout.windows(layout.load())
    if windows is None:
        raise ToolError('the partition layout has no ntfs partition for Windows')
    data = read_input('unattend.xml')
    if data is None:  # read_input raises for required files; kept for the type checker
        raise ToolError('unattend.xml is missing')
    with blockdev.ntfs_mounted(blockdev.partition_node(disk, windows.number)) as root:
        path = place_unattend(root, data)
        log('wrote %s (%d bytes)' % (os.path.relpath(path, root), len(data)))


if __name__ == '__main__':
    sys.exit(main_wrapper(main, 'unattend'))
