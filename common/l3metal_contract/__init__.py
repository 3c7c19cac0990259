# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The contract between the controller, the webhook receiver and the maintenance OS.

One source for what the three runtimes must agree on:

- ``recipe_schema``: the recipe JSON Schema (``RECIPE_SCHEMA``, ``schema_json()``);
- ``recipe``: loading, validation (every problem with its JSON path) and normalization of recipes;
- ``jobs``: job statuses, who may move a job where, the recipe identity of a job;
- ``webhook``: signed status webhooks (signing, verification, strict bodies) and their sender;
- ``medium``: the file names and volume label of the per-job task medium;
- ``retry``: the one retry/backoff policy (exponential backoff with jitter, ``Retry-After``).

The rule (checked by ``tests/tools/check_imports.py`` in ``make lint``): Python 3.9 or later; the
standard library plus ``jsonschema`` (recipe validation) and, optionally, PyYAML; imports inside the
package are relative.  No Ansible, no aiohttp, nothing of the other runtimes.  Where each runtime
gets it from: docs/architecture.md.
"""

from __future__ import annotations
