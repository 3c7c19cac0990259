# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Integration suites: real local services (the lab, ``l3metal_lab``), real tools, ansible-playbook against localhost.

Every module of ``fixtures/`` is loaded as a pytest plugin, so each area (Redfish, OCI, receiver,
maintenance OS) brings its fixtures in a file of its own.  ``fixtures`` is importable because
pytest.ini puts this directory on the path (``pythonpath = .``); the lab and the runtime packages are
installed in the virtualenv (``make venv``).
"""

from __future__ import annotations

from pathlib import Path

pytest_plugins = sorted('fixtures.' + path.stem for path in (Path(__file__).resolve().parent / 'fixtures').glob('*.py') if path.stem != '__init__')
