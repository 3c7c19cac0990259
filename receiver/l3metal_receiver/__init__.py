# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The l3metal webhook receiver: job API, signed status webhooks and media for BMCs.

Start it with ``python -m l3metal_receiver --host H --port P --data-dir D --media-dir M``.
"""

from __future__ import annotations

__version__ = '0.1.0'
