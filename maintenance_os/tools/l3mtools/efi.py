# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Firmware boot entries (efibootmgr), made from the step container when the node booted in UEFI mode."""

from __future__ import annotations

import os
import shutil

from .common import log, run

EFI_DIR = '/sys/firmware/efi'


def add_boot_entry(disk: str, esp_number: int, label: str, loader: str, fallback: str) -> bool:
    """Create a boot entry for loader (an ESP path such as \\EFI\\debian\\grubx64.efi); False when not possible.

    Without UEFI or efibootmgr the disk still boots through the removable-media fallback loader.
    """
    if not os.path.isdir(EFI_DIR):
        log('not booted in UEFI mode: no firmware boot entry (the fallback loader %s is in place)' % fallback)
        return False
    if shutil.which('efibootmgr') is None:
        log('efibootmgr not in this image: no firmware boot entry (the fallback loader %s is in place)' % fallback)
        return False
    efivars = os.path.join(EFI_DIR, 'efivars')
    if not os.path.ismount(efivars):  # a container's fresh sysfs does not have efivarfs mounted
        run(['mount', '-t', 'efivarfs', 'efivarfs', efivars], check=False)
    run(['efibootmgr', '--create', '--disk', disk, '--part', str(esp_number), '--label', label, '--loader', loader])
    return True
