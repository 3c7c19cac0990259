# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Integration suites: real local services, real tools, ansible-playbook against localhost.

Every ``harness/fixtures_*.py`` module is loaded as a pytest plugin, so each area (Redfish, OCI,
receiver, maintenance OS) brings its fixtures in a file of its own.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

pytest_plugins = sorted('harness.' + path.stem for path in (HERE / 'harness').glob('fixtures_*.py'))
