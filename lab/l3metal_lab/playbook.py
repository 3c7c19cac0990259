# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run ansible-playbook against localhost with this collection on the path, and read back every
task's result as data (through the test-only ``l3metal_record`` callback)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import typing as t
from pathlib import Path

import yaml

from .paths import COLLECTIONS_PATH, LAB_DIR


class TaskResult(t.NamedTuple):
    host: str
    task: str
    action: str
    status: str
    result: dict[str, t.Any]

    @property
    def changed(self) -> bool:
        return bool(self.result.get('changed'))

    @property
    def failed(self) -> bool:
        return self.status == 'failed'


class PlaybookResult:
    """What one ansible-playbook run did."""

    def __init__(self, rc: int, stdout: str, stderr: str, tasks: list[TaskResult]) -> None:
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        self.tasks = tasks

    def task(self, name: str) -> TaskResult:
        """The last result of the task called ``name`` (a later loop item or retry wins)."""
        found = [task for task in self.tasks if task.task == name]
        if not found:
            raise KeyError('no task %r ran; tasks: %s\n%s' % (name, [task.task for task in self.tasks], self.output))
        return found[-1]

    @property
    def changed(self) -> list[TaskResult]:
        return [task for task in self.tasks if task.changed]

    @property
    def failed(self) -> list[TaskResult]:
        return [task for task in self.tasks if task.failed]

    @property
    def output(self) -> str:
        return 'rc=%d\n--- stdout ---\n%s\n--- stderr ---\n%s' % (self.rc, self.stdout[-6000:], self.stderr[-4000:])

    def assert_ok(self) -> PlaybookResult:
        if self.rc != 0:
            raise AssertionError('ansible-playbook failed\n' + self.output)
        return self


def ansible_env(work_dir: Path, extra: t.Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for ansible-* commands: this collection first on the path, all state in work_dir."""
    env = dict(os.environ)
    env.update({
        'ANSIBLE_COLLECTIONS_PATH': str(COLLECTIONS_PATH),
        'ANSIBLE_COLLECTIONS_SCAN_SYS_PATH': 'false',
        'ANSIBLE_PYTHON_INTERPRETER': sys.executable,
        'ANSIBLE_HOME': str(work_dir / 'ansible-home'),
        'ANSIBLE_LOCAL_TEMP': str(work_dir / 'ansible-tmp'),
        'ANSIBLE_REMOTE_TEMP': str(work_dir / 'ansible-tmp'),
        'ANSIBLE_RETRY_FILES_ENABLED': 'false',
        'ANSIBLE_NOCOLOR': '1',
        'ANSIBLE_FORCE_COLOR': '0',
        'ANSIBLE_HOST_KEY_CHECKING': 'false',
        'ANSIBLE_DEPRECATION_WARNINGS': 'true',
        'ANSIBLE_CALLBACK_PLUGINS': str(LAB_DIR / 'callback_plugins'),
        'ANSIBLE_CALLBACKS_ENABLED': 'l3metal_record',
        'PATH': os.path.dirname(sys.executable) + os.pathsep + env.get('PATH', ''),
    })
    if extra:
        env.update(extra)
    return env


def run_playbook(playbook: str | Path | list[dict[str, t.Any]], work_dir: Path, extra_vars: t.Mapping[str, t.Any] | None = None,
                 check: bool = False, diff: bool = False, inventory: str = 'localhost,', extra_args: t.Sequence[str] = (),
                 env: t.Mapping[str, str] | None = None, timeout: float = 600) -> PlaybookResult:
    """Run a playbook (a path, or plays given as Python data) with a local connection.

    Extra vars travel as a JSON file, so any value survives quoting.  ``work_dir`` receives the
    playbook, the vars file, Ansible's temp dirs and the result record.
    """
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    runs = len(list(work_dir.glob('record-*.jsonl')))
    if isinstance(playbook, list):
        path = work_dir / ('playbook-%d.yml' % runs)
        path.write_text(yaml.safe_dump(playbook, sort_keys=False))
    else:
        path = Path(playbook)
    record = work_dir / ('record-%d.jsonl' % runs)
    argv = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), '-i', inventory, '-c', 'local', str(path)]
    if extra_vars:
        vars_file = work_dir / ('vars-%d.json' % runs)
        vars_file.write_text(json.dumps(extra_vars))
        argv += ['-e', '@' + str(vars_file)]
    if check:
        argv.append('--check')
    if diff:
        argv.append('--diff')
    argv += list(extra_args)
    proc = subprocess.run(argv, env=ansible_env(work_dir, dict(env or {}, L3METAL_RECORD_FILE=str(record))),
                          capture_output=True, text=True, timeout=timeout, check=False)
    tasks = []
    if record.exists():
        for line in record.read_text().splitlines():
            data = json.loads(line)
            tasks.append(TaskResult(data['host'], data['task'], data['action'], data['status'], data['result']))
    return PlaybookResult(proc.returncode, proc.stdout, proc.stderr, tasks)


def localhost_play(tasks: list[dict[str, t.Any]], name: str = 'test', gather_facts: bool = False, **play: t.Any) -> list[dict[str, t.Any]]:
    """One play against localhost holding ``tasks``."""
    return [dict({'name': name, 'hosts': 'localhost', 'gather_facts': gather_facts, 'tasks': tasks}, **play)]
