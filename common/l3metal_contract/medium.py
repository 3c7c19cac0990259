# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The per-job task medium: its volume label and the names of the files on it.

``task_iso`` (the controller) writes these names; the dispatcher (the node) finds the medium by the
label and reads them.  Payloads the recipe moves to files of their own keep the names of
``recipe_schema.PAYLOAD_FILES``.
"""

from __future__ import annotations

import re

from .recipe_schema import PAYLOAD_FILES

DEFAULT_LABEL = 'L3M_TASK'           # the volume label task_iso writes and the dispatcher looks for
RECIPE_FILE = 'recipe.json'          # the recipe, normalized, payloads moved out
SCHEMA_FILE = 'recipe.schema.json'   # the schema the controller validated with (the node checks it is its own)
META_DATA_FILE = 'meta-data'         # NoCloud meta-data, optional
RESERVED_NAMES = frozenset([RECIPE_FILE, SCHEMA_FILE, META_DATA_FILE] + list(PAYLOAD_FILES.values()))

# The name of a medium uploaded to the receiver (PUT /api/v1/jobs/{id}/media/{name}): one file name, not hidden, as a
# per-job media URL serves it.  The receiver enforces it; the controller checks it first (check mode sends no PUT).
UPLOAD_NAME = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}\Z')
UPLOAD_NAME_RULE = 'must be a file name of 1 to 128 letters, digits and ._+- that does not start with . _ + or -'
