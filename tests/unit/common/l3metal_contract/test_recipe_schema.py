# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The recipe schema has one source; every other copy must be byte-identical to its serialization."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from l3metal_contract.recipe_schema import RECIPE_SCHEMA, SCHEMA_ID, SCHEMA_VERSION, schema_json

COLLECTION_ROOT = Path(__file__).resolve().parents[4]


def test_schema_is_a_valid_draft7_schema():
    jsonschema.Draft7Validator.check_schema(RECIPE_SCHEMA)
    assert RECIPE_SCHEMA['$id'] == SCHEMA_ID
    assert SCHEMA_ID.endswith(':' + SCHEMA_VERSION)


def test_docs_copy_has_not_drifted():
    # regenerate with `make schema`
    assert (COLLECTION_ROOT / 'docs' / 'recipe.schema.json').read_text() == schema_json()


def test_serialization_round_trips():
    assert json.loads(schema_json()) == RECIPE_SCHEMA
