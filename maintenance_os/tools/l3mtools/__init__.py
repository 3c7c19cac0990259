# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Entrypoints of the provisioning tool containers (one module per step) and what they share.

Each tool image (maintenance_os/tools/<tool>/Containerfile) installs this package and runs
``python3 -m l3mtools.<step>``.  Inputs: the variables of /run/provision/recipe.env passed by the
Quadlet unit (TARGET_DISK, OCI_URL, ...) and the files in /run/provision (layout.json, user-data, ...).
"""
