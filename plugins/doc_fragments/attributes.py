# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    """Descriptions of the module attributes; each module states its own support level."""

    DOCUMENTATION = r'''
options: {}
attributes:
  check_mode:
    description: Can run in check mode and return a changed status prediction without modifying the target.
  diff_mode:
    description: Returns details on what has changed (or would change in check mode) when in diff mode.
'''

    # For modules that only read: nothing to change, so check mode is fully supported and diff is moot.
    INFO_MODULE = r'''
options: {}
attributes:
  check_mode:
    support: full
    details: This module only reads and changes nothing.
  diff_mode:
    support: N/A
    details: This module only reads and changes nothing.
'''
