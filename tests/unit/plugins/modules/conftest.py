# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run a module's main() in-process with given arguments and return its JSON result."""

from __future__ import annotations

import json
import typing as t

import pytest
from ansible.module_utils.testing import patch_module_args


class ModuleResult(t.NamedTuple):
    failed: bool
    result: dict[str, t.Any]


@pytest.fixture
def run_module(capsys: pytest.CaptureFixture[str]) -> t.Callable[..., ModuleResult]:
    def run(module: t.Any, args: dict[str, t.Any], check_mode: bool = False, diff: bool = False) -> ModuleResult:
        args = dict(args)
        if check_mode:
            args['_ansible_check_mode'] = True
        if diff:
            args['_ansible_diff'] = True
        with patch_module_args(args), pytest.raises(SystemExit) as exit_info:
            module.main()
        result = json.loads(capsys.readouterr().out)
        assert (exit_info.value.code != 0) == bool(result.get('failed')), result
        return ModuleResult(bool(result.get('failed')), result)

    return run
