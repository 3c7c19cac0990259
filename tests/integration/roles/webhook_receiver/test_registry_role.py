# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The webhook_receiver role's embedded-registry variables: a foreground receiver serving /v2/ from the layout
directory, push with the htpasswd users (file 0640, never printed), pull open, the layout readable offline."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import bcrypt
import requests

from l3metal_lab.playbook import localhost_play
from l3metal_lab.ports import port_is_open
from l3metal_oci.errors import AuthenticationError
from l3metal_oci.pull import pull_to_directory
from l3metal_oci.push import PushFile, push_artifact

ROLE = 'l3metal.provision.webhook_receiver'


def role_play(role_vars, tasks=()):
    return localhost_play([{'name': 'receiver', 'ansible.builtin.include_role': {'name': ROLE}}] + list(tasks), vars=role_vars)


def test_role_turns_on_the_registry_with_htpasswd_users(ansible_playbook, tmp_path, unused_port):
    hashed = bcrypt.hashpw(b'ci-secret', bcrypt.gensalt(rounds=4)).decode()
    base = tmp_path / 'fg'
    role_vars = {
        'webhook_receiver_mode': 'foreground',
        'webhook_receiver_foreground_dir': str(base),
        'webhook_receiver_host': '127.0.0.1',
        'webhook_receiver_port': unused_port,
        'webhook_receiver_python': sys.executable,
        'webhook_receiver_api_token': 'role-api-token',
        'webhook_receiver_oci_layout_dir': str(tmp_path / 'layout'),
        'webhook_receiver_oci_htpasswd': 'ci:%s\n' % hashed,
    }
    stop = {'name': 'stop', 'ansible.builtin.include_role': {'name': ROLE, 'tasks_from': 'stop'}}
    try:
        result = ansible_playbook(role_play(role_vars)).assert_ok()
        htpasswd = base / 'config' / 'oci-htpasswd'
        assert htpasswd.stat().st_mode & 0o777 == 0o640 and htpasswd.read_text() == 'ci:%s\n' % hashed
        assert hashed not in result.stdout

        host = '127.0.0.1:%d' % unused_port
        (tmp_path / 'rootfs.tar.gz').write_bytes(b'not really a tarball')
        files = [PushFile(str(tmp_path / 'rootfs.tar.gz'))]
        try:
            push_artifact('%s/os-images/rootfs:1' % host, files, insecure=True, username='ci', password='wrong')
            raise AssertionError('pushed with a wrong password')
        except AuthenticationError:
            pass
        pushed = push_artifact('%s/os-images/rootfs:1' % host, files, insecure=True, username='ci', password='ci-secret')
        pull_to_directory('%s/os-images/rootfs:1' % host, str(tmp_path / 'out'), insecure=True)
        assert (tmp_path / 'out' / 'rootfs.tar.gz').read_bytes() == b'not really a tarball'
        index = json.loads((tmp_path / 'layout' / 'index.json').read_text())
        assert [(m['digest'], m['annotations']['org.opencontainers.image.ref.name']) for m in index['manifests']] == \
            [(pushed.digest, 'os-images/rootfs:1')]
        # deletion is off by default
        assert requests.delete('http://%s/v2/os-images/rootfs/manifests/1' % host, auth=('ci', 'ci-secret'), timeout=10).status_code == 405

        again = ansible_playbook(role_play(role_vars)).assert_ok()
        assert [task.task for task in again.changed] == []
    finally:
        ansible_playbook(role_play(role_vars, [stop]))
    assert not port_is_open(unused_port)
    assert Path(tmp_path / 'layout' / 'oci-layout').exists()
