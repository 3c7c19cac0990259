# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The maintenance OS units: systemd-analyze verify, Quadlet's generator, and the job engine of a real systemd.

What the user-manager tests prove: the targets' dependency graph, per-step OnFailure= with the %n of
the failed step, ExecCondition= filtering of dependency failures, the success unit, the progress
ExecStartPre/Post lines and EnvironmentFile= parsing, each run by systemd 252 and reported through
the real ``provisioner notify`` to the real webhook receiver (the job's status, failed_step and events
are read back through its API).  The steps' own ExecStart (podman run) is replaced by a drop-in with a
shell command that succeeds or fails; podman is not run here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest

from l3metal_lab.paths import COLLECTION_ROOT
from l3metal_lab.provisioner import NodeJob, build_medium, run_provisioner
from l3metal_lab.waiting import wait_for

SYSTEMD_DIR = COLLECTION_ROOT / 'maintenance_os' / 'systemd'
QUADLET_DIR = COLLECTION_ROOT / 'maintenance_os' / 'quadlets'
CHAINS = {
    'install-linux.target': ['partition.service', 'image-linux.service', 'bootloader-linux.service', 'config-drive.service'],
    'install-windows.target': ['partition.service', 'image-windows.service', 'bootloader-windows.service', 'unattend.service'],
    'firmware-update.target': ['firmware-flash.service'],
    'supermicro-update.target': ['supermicro-flash.service'],
}


def generate_quadlet_units(quadlet: Path, out: Path) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([str(quadlet), '-no-kmsg-log', str(out)], env=dict(os.environ, QUADLET_UNIT_DIRS=str(QUADLET_DIR)),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    assert proc.returncode == 0, proc.stdout
    return {p.name: p for p in out.glob('*.service')}


def test_quadlet_accepts_every_container_file(quadlet_binary, tmp_path):
    proc = subprocess.run([str(quadlet_binary), '-dryrun'], env=dict(os.environ, QUADLET_UNIT_DIRS=str(QUADLET_DIR)),
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    containers = sorted(p.stem for p in QUADLET_DIR.glob('*.container'))
    generated = sorted(line.strip('-').removesuffix('.service') for line in proc.stdout.splitlines() if line.startswith('---') and line.endswith('---'))
    assert generated == containers
    assert 'unsupported' not in proc.stderr.lower() and 'warning' not in proc.stderr.lower(), proc.stderr
    units = generate_quadlet_units(quadlet_binary, tmp_path / 'gen')
    for name, path in units.items():
        text = path.read_text()
        exec_start = next(line for line in text.splitlines() if line.startswith('ExecStart='))
        assert '--pull never' in exec_start, name  # bound images only: nothing is pulled while provisioning
        assert '-v /run/provision:/run/provision:ro' in exec_start, name
        assert 'EnvironmentFile=/run/provision/recipe.env' in text, name
        assert 'OnFailure=provision-failed@%n.service' in text, name
        assert ':latest' not in exec_start, name


def verify_root(tmp_path: Path, quadlet: Path) -> tuple[Path, list[str]]:
    """A root with the host's units, ours, the Quadlet output and the binaries the units execute."""
    root = tmp_path / 'root'
    unit_dir = root / 'usr' / 'lib' / 'systemd' / 'system'
    unit_dir.parent.mkdir(parents=True)
    shutil.copytree('/lib/systemd/system', unit_dir, symlinks=True)
    names = []
    for source in list(SYSTEMD_DIR.iterdir()) + list(generate_quadlet_units(quadlet, tmp_path / 'gen').values()):
        shutil.copyfile(source, unit_dir / source.name)
        names.append(source.name)
    for binary, source in (('usr/sbin/provisioner', COLLECTION_ROOT / 'maintenance_os' / 'dispatcher' / 'bin' / 'provisioner'),
                           ('usr/bin/podman', Path(shutil.which('podman') or '/usr/bin/podman')),
                           ('usr/bin/systemctl', Path('/usr/bin/systemctl'))):
        dest = root / binary
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, dest)
    return root, names


def test_systemd_analyze_verify_passes_on_every_unit(quadlet_binary, tmp_path):
    root, names = verify_root(tmp_path, quadlet_binary)
    # templates are checked as instances, with the instance names the units really use
    units = [n.replace('@.service', '@install-linux.target.service') if n.startswith('provision-success') else
             n.replace('@.service', '@bootloader-linux.service.service') for n in names]
    proc = subprocess.run(['systemd-analyze', 'verify', '--root=%s' % root, '--man=no'] + units, cwd=root / 'usr/lib/systemd/system',
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    assert proc.returncode == 0, proc.stdout
    assert 'Unknown' not in proc.stdout and 'ignoring' not in proc.stdout, proc.stdout
    # the check is live: a missing binary makes it fail
    (root / 'usr/sbin/provisioner').unlink()
    proc = subprocess.run(['systemd-analyze', 'verify', '--root=%s' % root, '--man=no', 'provision-dispatcher.service'],
                          cwd=root / 'usr/lib/systemd/system', stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    assert proc.returncode != 0 and '/usr/sbin/provisioner is not executable' in proc.stdout


def test_every_target_is_a_marked_provisioning_target():
    targets = sorted(p.name for p in SYSTEMD_DIR.glob('*.target'))
    assert targets == sorted(CHAINS)
    for name in targets:
        text = '\n'.join(line for line in (SYSTEMD_DIR / name).read_text().splitlines() if not line.startswith('#'))
        assert 'X-L3metal-Provisioning=yes' in text
        assert 'Wants=provision-success@%n.service' in text
        assert 'OnFailure=' not in text and 'OnSuccess=' not in text  # see provision-failed@.service for why


# ---------------------------------------------------------------------------------------------------
# a real systemd runs the graph


def provisioner_wrapper(run_dir: Path, calls: Path) -> str:
    """/usr/sbin/provisioner for the units: the dispatcher installed in this Python, every call's arguments appended to ``calls``
    (the receiver stores one outcome per job, so a second failure report would only show as a refused request)."""
    return '#!/bin/sh\necho "$*" >> %s\nPROVISION_RUN_DIR=%s exec %s -m provisioner "$@"\n' % (calls, run_dir, sys.executable)


class Provisioning(t.NamedTuple):
    manager: t.Any
    job: NodeJob
    calls: Path

    def notify_calls(self, status: str) -> list[str]:
        lines = self.calls.read_text().splitlines() if self.calls.exists() else []
        return [line for line in lines if line.startswith('notify --status %s' % status)]


@pytest.fixture
def provisioning_systemd(user_systemd, quadlet_binary, shared_receiver, tmp_path):
    """A systemd --user with our targets, handlers and the Quadlet-generated steps, a job registered with the real
    receiver, and a run dir written by provisioner run from that job's task medium."""
    job = NodeJob(shared_receiver)
    run_dir = tmp_path / 'run'
    medium = build_medium(tmp_path / 'task.iso', job.recipe())
    proc = run_provisioner('run', '--medium', str(medium), '--run-dir', str(run_dir), '--dry-run')
    assert proc.returncode == 0, proc.stderr
    calls = tmp_path / 'provisioner-calls.log'
    manager = user_systemd({'provisioner': provisioner_wrapper(run_dir, calls)})
    for source in SYSTEMD_DIR.iterdir():
        manager.unit_dir.mkdir(parents=True, exist_ok=True)
        manager.install(source)
    for name, path in generate_quadlet_units(quadlet_binary, tmp_path / 'gen').items():
        manager.install(path, name)
    return Provisioning(manager, job, calls)


def stand_in_steps(manager, steps: t.Iterable[str], failing: str | None, ran_log: Path) -> None:
    for step in steps:
        manager.drop_in(step, '\n'.join([
            '[Service]',
            'EnvironmentFile=',
            'ExecStart=',
            "ExecStart=/bin/sh -c 'echo %%n >> %s; exit %d'" % (ran_log, 3 if step == failing else 0),
            'ExecStop=',
            'ExecStopPost=',
            '',
        ]))


def start_and_settle(manager, target: str) -> subprocess.CompletedProcess[str]:
    manager.start()
    result = manager.systemctl('start', target)
    wait_for(manager.idle, timeout=60, what='no systemd jobs left')
    return result


def progress(events, step):
    return [e['state'] for e in events if e['type'] == 'progress' and e['step'] == step]


def statuses(events):
    return [e['status'] for e in events if e['type'] == 'status']


@pytest.mark.parametrize('target,failing', [
    ('install-linux.target', 'bootloader-linux.service'),
    ('install-linux.target', 'partition.service'),
    ('install-windows.target', 'unattend.service'),
    ('supermicro-update.target', 'supermicro-flash.service'),
])
def test_the_failed_step_reaches_the_webhook(provisioning_systemd, tmp_path, target, failing):
    manager, job, _calls = provisioning_systemd
    ran_log = tmp_path / 'ran.log'
    steps = CHAINS[target]
    stand_in_steps(manager, steps, failing, ran_log)
    result = start_and_settle(manager, target)
    assert result.returncode != 0
    state = job.wait_for_status('failed')
    wait_for(manager.idle, timeout=30, what='handlers finished')
    assert (state['failed_step'], state['reason']) == (failing, '%s failed' % failing)
    # exactly the step that failed reported; the steps after it only failed as dependencies and stay silent
    assert provisioning_systemd.notify_calls('failed') == ['notify --status failed --step %s' % failing]
    assert provisioning_systemd.notify_calls('success') == []
    events = job.events()
    assert statuses(events) == ['queued', 'provisioning', 'failed']
    assert all(e['source'] == 'node' for e in events[1:])
    index = steps.index(failing)
    assert ran_log.read_text().split() == steps[:index + 1]
    for step in steps[:index]:
        assert progress(events, step) == ['started', 'done']
    assert progress(events, failing) == ['started']
    for step in steps[index + 1:]:
        assert progress(events, step) == []


@pytest.mark.parametrize('target', sorted(CHAINS))
def test_success_is_reported_after_the_last_step(provisioning_systemd, tmp_path, target):
    manager, job, _calls = provisioning_systemd
    ran_log = tmp_path / 'ran.log'
    stand_in_steps(manager, CHAINS[target], None, ran_log)
    result = start_and_settle(manager, target)
    assert result.returncode == 0, result.stdout
    job.wait_for_status('succeeded')
    assert ran_log.read_text().split() == CHAINS[target]
    assert provisioning_systemd.notify_calls('success') == ['notify --status success']
    assert provisioning_systemd.notify_calls('failed') == []
    events = job.events()
    assert statuses(events) == ['queued', 'provisioning', 'succeeded']
    assert events[-1] == {'type': 'status', 'source': 'node', 'status': 'succeeded'}  # after every step's progress
    for step in CHAINS[target]:
        assert progress(events, step) == ['started', 'done']


def test_recipe_env_values_survive_systemd_environmentfile(user_systemd, tmp_path):
    from provisioner import envfile  # pylint: disable=import-outside-toplevel
    values = {
        'SPACES': '  leading and trailing  ',
        'QUOTES': 'it\'s "quoted" \'twice\'',
        'NEWLINES': 'line one\nline two\n\nline four',
        'DOLLARS': '$HOME ${PATH} $$ $',
        'BACKSLASHES': 'C:\\Windows\\ \\n \\" \\\\ end\\',
        'MIXED': '`uname` \t tab; # not a comment = equals %n %i',
        'URL': 'https://fw.example.com/a b/fw.bin?x=1&y="2"#frag',
        'EMPTY': '',
        'UNICODE': 'Grüße – 固件',
    }
    env_file = tmp_path / 'recipe.env'
    env_file.write_text(envfile.render(values, 'test'))
    dump = tmp_path / 'env.json'
    manager = user_systemd()
    manager.unit_dir.mkdir(parents=True, exist_ok=True)
    (manager.unit_dir / 'envdump.service').write_text('\n'.join([
        '[Service]', 'Type=oneshot', 'EnvironmentFile=%s' % env_file,
        "ExecStart=%s -c 'import json, os; json.dump(dict(os.environ), open(\"%s\", \"w\"))'" % (sys.executable, dump), '']))
    manager.start()
    result = manager.systemctl('start', 'envdump.service')
    assert result.returncode == 0, result.stdout
    seen = json.loads(dump.read_text())
    assert {key: seen.get(key) for key in values} == values
