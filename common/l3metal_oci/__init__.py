# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The collection's one OCI registry client: resolve, push, pull (streamed, verified), unpack, delete.

Runs on the controller (the ``oci_artifact`` modules) and in the maintenance OS's image steps
(``l3mtools.oci``).  The rule (checked by ``tests/tools/check_imports.py`` in ``make lint``): Python
3.9 or later; the standard library plus ``requests`` and, optionally, ``zstandard``; imports inside
the package are relative.  No Ansible.
"""

from __future__ import annotations
