# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Paths inside an applied Windows volume: NTFS under ntfs-3g is case-sensitive, Windows paths are not."""

from __future__ import annotations

import os


def find_path(root: str, relative: str) -> str | None:
    """root/relative matched component by component ignoring case; None when a component is missing."""
    current = root
    for component in [c for c in relative.split('/') if c]:
        try:
            names = os.listdir(current)
        except OSError:
            return None
        match = next((n for n in names if n == component), None) or next((n for n in names if n.lower() == component.lower()), None)
        if match is None:
            return None
        current = os.path.join(current, match)
    return current
