# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``python -m l3metal_receiver``: run the receiver in the foreground."""

from __future__ import annotations

import sys

from .server import main

sys.exit(main())
