# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Put the maintenance OS packages (provisioner, l3mtools) on the import path, as the images do."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3] / 'maintenance_os'
for path in (ROOT / 'dispatcher', ROOT / 'tools'):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
