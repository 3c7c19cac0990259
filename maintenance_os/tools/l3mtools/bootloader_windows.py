# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""bootloader-windows.service: put the Windows EFI boot files on the ESP.

Copies Windows/Boot/EFI from the applied image to EFI/Microsoft/Boot on the ESP, and bootmgfw.efi to
the removable-media path EFI/Boot/bootx64.efi so firmware without a boot entry still finds it.  The
ESP is written with mtools (no vfat mount needed); the NTFS volume is read through ntfs-3g.

Windows also needs a BCD store in EFI/Microsoft/Boot.  Windows' own bcdboot builds it; this step
copies one when the image provides it (Windows/Boot/EFI/BCD, e.g. made by sysprep tooling) and
warns otherwise.
"""

from __future__ import annotations

import os
import sys

from . import blockdev, efi, fat, layout
from .common import ToolError, env, log, main_wrapper
from .winfs import find_path

EFI_SOURCE = 'Windows/Boot/EFI'
ESP_TARGET = '/EFI/Microsoft/Boot'
FALLBACK_LOADER = '/EFI/Boot/bootx64.efi'


def install_boot_files(windows_root: str, esp_device: str) -> list[str]:
    source = find_path(windows_root, EFI_SOURCE)
    if source is None or not os.path.isdir(source):
        raise ToolError('the applied image has no %s: is it a Windows image (and the right wim_index)?' % EFI_SOURCE)
    loader = find_path(source, 'bootmgfw.efi')
    if loader is None:
        raise ToolError('%s has no bootmgfw.efi' % EFI_SOURCE)
    written = fat.copy_tree(esp_device, source, ESP_TARGET)
    fat.copy_file(esp_device, loader, FALLBACK_LOADER)
    written.append(FALLBACK_LOADER)
    if find_path(source, 'BCD') is None:
        log('warning: %s has no BCD store; Windows boots only once a BCD store is in %s (bcdboot creates it)' % (EFI_SOURCE, ESP_TARGET))
    return written


def main() -> None:
    disk = blockdev.resolve_disk(env('TARGET_DISK'))
    parts = layout.load()
    esp, windows = layout.esp(parts), layout.windows(parts)
    if esp is None or windows is None:
        raise ToolError('the partition layout needs an ESP (type ef00) and an ntfs partition for Windows')
    with blockdev.ntfs_mounted(blockdev.partition_node(disk, windows.number), read_only=True) as root:
        written = install_boot_files(root, blockdev.partition_node(disk, esp.number))
    log('wrote %d files to the ESP' % len(written))
    efi.add_boot_entry(disk, esp.number, 'Windows Boot Manager', '\\EFI\\Microsoft\\Boot\\bootmgfw.efi', FALLBACK_LOADER)


if __name__ == '__main__':
    sys.exit(main_wrapper(main, 'bootloader-windows'))
