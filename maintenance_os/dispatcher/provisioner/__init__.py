# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The maintenance OS dispatcher: find the task medium, check the recipe, write /run/provision, start the target.

``python3 -m provisioner run`` is what ``provision-dispatcher.service`` runs at boot;
``python3 -m provisioner notify`` is what the step, success and failure units run to send webhooks.
"""

from __future__ import annotations

__version__ = '1.0.0'
