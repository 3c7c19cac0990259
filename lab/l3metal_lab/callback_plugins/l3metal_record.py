# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Test-only callback: append every task result as one JSON line to $L3METAL_RECORD_FILE."""

from __future__ import annotations

import json
import os

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r'''
name: l3metal_record
type: aggregate
short_description: Record task results as JSON lines for the test harness
description:
  - Writes one JSON object per task result (host, task name, action, status, result) to the file named
    by the E(L3METAL_RECORD_FILE) environment variable.
requirements:
  - enable in configuration
'''


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'l3metal_record'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self._path = os.environ.get('L3METAL_RECORD_FILE')

    def _write(self, status: str, result: object) -> None:
        if not self._path:
            return
        task = result._task  # type: ignore[attr-defined]  # pylint: disable=protected-access
        record = {
            'host': result._host.get_name(),  # type: ignore[attr-defined]  # pylint: disable=protected-access
            'task': task.get_name(),
            'action': task.action,
            'status': status,
            'result': self._dump(result._result),  # type: ignore[attr-defined]  # pylint: disable=protected-access
        }
        with open(self._path, 'a', encoding='utf-8') as handle:
            handle.write(json.dumps(record, default=str) + '\n')

    @staticmethod
    def _dump(data: object) -> object:
        # results hold Ansible's tagged/unsafe types: a JSON round trip through str keeps the values
        return json.loads(json.dumps(data, default=str))

    def v2_runner_on_ok(self, result: object) -> None:
        self._write('ok', result)

    def v2_runner_on_failed(self, result: object, ignore_errors: bool = False) -> None:
        self._write('ignored' if ignore_errors else 'failed', result)

    def v2_runner_on_skipped(self, result: object) -> None:
        self._write('skipped', result)

    def v2_runner_on_unreachable(self, result: object) -> None:
        self._write('unreachable', result)
