# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run the maintenance OS dispatcher CLI from the collection tree, build task media with task_iso's code,
and register the jobs those media belong to with the real webhook receiver (``NodeJob``)."""

from __future__ import annotations

import base64
import copy
import json
import os
import subprocess
import sys
import typing as t
from pathlib import Path

from ansible_collections.l3metal.provision.plugins.module_utils import _task_media
from l3metal_contract import webhook as _webhook

from .receiver import Receiver, unique_serial
from .waiting import wait_for

TOKEN = 'job-token-0123456789abcdef'
SERIAL = 'SN-TEST-0001'
JOB_ID = 'job-42'
# For media whose webhooks nobody receives (the tool tests): nothing listens on port 9.
UNUSED_CALLBACK = {'url': 'http://127.0.0.1:9', 'job_id': JOB_ID, 'token': TOKEN, 'serial': SERIAL}
DISPATCHER_UNIT = _webhook.SITE_KEY_STEP

USER_DATA = b'#cloud-config\nhostname: node01\nruncmd:\n  - echo "it\'s $HOME"\n'
UNATTEND = b'<?xml version="1.0"?>\n<unattend xmlns="urn:schemas-microsoft-com:unattend"><!-- admin password --></unattend>\n'


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def linux_recipe(callback: t.Mapping[str, str] | None = None, **overrides: t.Any) -> dict[str, t.Any]:
    recipe: dict[str, t.Any] = {
        'task_target': 'install-linux.target',
        'target_disk': '/dev/sda',
        'oci_url': 'registry.example.com:5000/os-images/ubuntu-rootfs:22.04',
        'user_data': b64(USER_DATA),
        'partition_layout': [
            {'size': '512M', 'type_guid': 'ef00', 'format': 'vfat'},
            {'size': '16M', 'type_guid': '8300', 'format': 'vfat', 'label': 'cidata'},
            {'size': '100%', 'type_guid': '8300', 'format': 'ext4'},
        ],
        'callback': dict(callback or UNUSED_CALLBACK),
    }
    recipe.update(overrides)
    return recipe


def windows_recipe(callback: t.Mapping[str, str] | None = None) -> dict[str, t.Any]:
    return {
        'task_target': 'install-windows.target',
        'target_disk': '/dev/nvme0n1',
        'oci_url': 'registry.example.com:5000/os-images/windows-wim:2022',
        'wim_index': 2,
        'partition_layout': [
            {'size': '260M', 'type_guid': 'ef00', 'format': 'vfat', 'label': 'SYSTEM'},
            {'size': '16M', 'type_guid': '0c01'},
            {'size': '100%', 'type_guid': '0700', 'format': 'ntfs', 'label': 'Windows'},
        ],
        'callback': dict(callback or UNUSED_CALLBACK),
    }


def build_medium(path: Path, recipe: t.Any, fmt: str = 'iso', validate: bool = True, payloads: t.Mapping[str, bytes] | None = None,
                 replace: t.Mapping[str, bytes | None] | None = None, meta_data: bytes | None = None) -> Path:
    """A task medium made by task_iso's backend; ``replace`` swaps or (None) drops files, as a foreign or broken medium would."""
    files = _task_media.collect_files(copy.deepcopy(recipe), payloads=payloads, meta_data=meta_data, validate=validate)
    by_name = {f.name: f.data for f in files}
    for name, data in (replace or {}).items():
        if data is None:
            by_name.pop(name, None)
        else:
            by_name[name] = data
    media = _task_media.build_media([_task_media.MediaFile(n, d) for n, d in sorted(by_name.items())], fmt)
    path.write_bytes(media.data)
    return path


def run_provisioner(*args: str, env: t.Mapping[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python3 -m provisioner ARGS`` with the dispatcher package installed in this Python (``make venv``)."""
    environment = dict(os.environ)
    environment.update(env or {})
    return subprocess.run([sys.executable, '-m', 'provisioner'] + list(args), env=environment, capture_output=True,
                          text=True, timeout=timeout, check=False)


class NodeJob:
    """A job registered with the real receiver, as a playbook registers it, for the recipe a test puts on a medium.

    ``recipe(base)`` is ``base`` with the job's callback block (url, job id, per-job token, serial):
    what the provision_job module hands to task_iso.  State is read back through the receiver's API.
    """

    def __init__(self, receiver: Receiver, recipe: t.Mapping[str, t.Any] | None = None, attached: t.Sequence[str] = ()) -> None:
        self.receiver = receiver
        base = dict(recipe or linux_recipe())
        base.pop('callback', None)
        self.doc = receiver.create_job(unique_serial('SN'), base, attached=list(attached))
        self.job_id: str = self.doc['job_id']
        self.serial: str = self.doc['server_serial']
        self.callback: dict[str, str] = self.doc['callback']

    def recipe(self, base: t.Mapping[str, t.Any] | None = None) -> dict[str, t.Any]:
        return dict(base if base is not None else self.doc['recipe'], callback=dict(self.callback))

    def state(self) -> dict[str, t.Any]:
        return self.receiver.get_job(self.job_id)

    def events(self) -> list[dict[str, t.Any]]:
        """The job's events without seq and time: [{'type': 'status', 'source': 'user', 'status': 'queued'}, ...]."""
        return [{key: value for key, value in event.items() if key not in ('seq', 'at')} for event in self.receiver.events(self.job_id)]

    def wait_for_status(self, *statuses: str, timeout: float = 30.0) -> dict[str, t.Any]:
        wait_for(lambda: self.state()['status'] in statuses, timeout=timeout, what='job %s to become %s' % (self.job_id, '/'.join(statuses)))
        return self.state()


def read_env_names(path: Path) -> list[str]:
    return [line.split('=', 1)[0] for line in path.read_text().splitlines() if line and not line.startswith('#')]


def json_file(path: Path) -> t.Any:
    return json.loads(path.read_text())
