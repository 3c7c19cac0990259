# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Arbitrary JSON and text never make recipe validation raise anything but RecipeError, and every
problem it reports is a (path, message) pair of non-empty strings."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from l3metal_contract.recipe import RecipeError, check_recipe, validate_recipe
from l3metal_contract.recipe_schema import RECIPE_SCHEMA

KEYS = list(RECIPE_SCHEMA['properties']) + ['size', 'type_guid', 'format', 'label', 'mountpoint', 'url', 'job_id', 'token', 'x']
SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20) | st.sampled_from(
    ['install-linux.target', 'install-windows.target', 'supermicro-update.target', '100%', '512M', 'ef00', 'ext4', '/dev/sda',
     'r.io/a/b:1', 'https://x/y', 'aGVsbG8='])
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), inner, max_size=6),
                    max_leaves=30)
RECIPES = st.fixed_dictionaries({}, optional={key: JSON for key in RECIPE_SCHEMA['properties']})


def assert_clean(problems):
    assert problems
    for problem in problems:
        assert isinstance(problem.path, str) and problem.path
        assert isinstance(problem.message, str) and problem.message
        assert 'Traceback' not in problem.message


@settings(max_examples=250, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSON)
def test_any_json_value(value):
    try:
        recipe = validate_recipe(value)
    except RecipeError as exc:
        assert_clean(exc.problems)
    else:
        assert check_recipe(recipe) == []


@settings(max_examples=250, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(RECIPES)
def test_recipe_shaped_values(value):
    problems = check_recipe(value)
    if problems:
        assert_clean(problems)
        assert len(set(problems)) == len(problems)
    else:
        # valid recipes normalize, survive a JSON round trip and stay valid
        normalized = validate_recipe(json.dumps(value))
        assert check_recipe(normalized) == []


@settings(max_examples=250, deadline=None, database=None)
@given(st.text(max_size=200) | st.binary(max_size=200))
def test_any_text(text):
    try:
        validate_recipe(text)
    except RecipeError as exc:
        assert_clean(exc.problems)
