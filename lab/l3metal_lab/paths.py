# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Where the lab finds the collection: the checkout it was installed from, and the layout copy Ansible runs.

``make venv`` installs this package editable from the checkout, so ``SOURCE_ROOT`` is the checkout.
Ansible needs the collection at ``ansible_collections/l3metal/provision`` with the generated
module_utils copies of ``common/`` (``tests/tools/layout.py``): ``COLLECTION_ROOT`` is that layout copy,
``$L3METAL_COLLECTION_ROOT`` when set, else the checkout itself when it already is a collection
directory, else ``<checkout>/.build/ansible_collections/l3metal/provision`` (``make layout``).
"""

from __future__ import annotations

import os
from pathlib import Path

SOURCE_ROOT = Path(__file__).resolve().parents[2]


def _collection_root() -> Path:
    configured = os.environ.get('L3METAL_COLLECTION_ROOT')
    if configured:
        return Path(configured).resolve()
    if SOURCE_ROOT.parent.name == 'l3metal' and SOURCE_ROOT.parents[1].name == 'ansible_collections':
        return SOURCE_ROOT
    return SOURCE_ROOT / '.build' / 'ansible_collections' / 'l3metal' / 'provision'


COLLECTION_ROOT = _collection_root()
# The directory that holds ansible_collections/: ANSIBLE_COLLECTIONS_PATH, and the import root of
# ``ansible_collections.l3metal.provision`` for code that uses the collection's module_utils.
COLLECTIONS_PATH = COLLECTION_ROOT.parents[2]
LAB_DIR = Path(__file__).resolve().parent
# Downloads and builds the lab keeps between runs (VM images, probes): $L3METAL_CACHE_DIR, else <checkout>/.cache.
CACHE_DIR = Path(os.environ.get('L3METAL_CACHE_DIR') or SOURCE_ROOT / '.cache')
