# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""oci_artifact and oci_artifact_info through ansible-playbook against the receiver's embedded registry, unchanged:
push (check mode, idempotent), info, pull of files (idempotent, repair), delete (absent, idempotent)."""

from __future__ import annotations

import json
import os

from fixtures.registry_receiver import PUSH_PASSWORD, PUSH_USER
from l3metal_lab.playbook import localhost_play


def task(name: str, module: str, check: bool = False, **options) -> dict:
    result = {'name': name, 'l3metal.provision.' + module: options, 'ignore_errors': True}
    if check:
        result['check_mode'] = True
    return result


def failed(result) -> bool:
    return result.status in ('failed', 'ignored') or bool(result.result.get('failed'))


def test_oci_artifact_modules_work_against_the_receiver(ansible_playbook, oci_receiver, tmp_path):
    wim = tmp_path / 'install.wim'
    wim.write_bytes(os.urandom(300000))
    (tmp_path / 'unattend.xml').write_text('<unattend/>\n')
    ref = '%s/os-images/windows-wim:2022' % oci_receiver.host
    creds = dict(insecure=True, username=PUSH_USER, password=PUSH_PASSWORD)
    push = dict(reference=ref, files=[str(wim), str(tmp_path / 'unattend.xml')], **creds)
    dest = tmp_path / 'downloads'
    pull = dict(reference=ref, state='pulled', dest=str(dest), insecure=True)  # open pull: no credentials
    absent = dict(reference=ref, state='absent', **creds)
    result = ansible_playbook(localhost_play([
        task('check', 'oci_artifact', check=True, **push),
        task('unauthorized', 'oci_artifact', reference=ref, files=[str(wim)], insecure=True),
        task('push', 'oci_artifact', **push),
        task('push again', 'oci_artifact', **push),
        task('info', 'oci_artifact_info', reference=ref, insecure=True),
        task('pull', 'oci_artifact', **pull),
        task('pull again', 'oci_artifact', **pull),
        {'name': 'edit', 'ansible.builtin.copy': {'dest': str(dest / 'unattend.xml'), 'content': 'edited\n'}},
        task('repair', 'oci_artifact', **pull),
        task('rm', 'oci_artifact', **absent),
        task('rm again', 'oci_artifact', **absent),
        task('info after', 'oci_artifact_info', reference=ref, insecure=True),
    ])).assert_ok()
    assert not any(failed(t) for t in result.tasks if t.task != 'unauthorized'), result.output

    unauthorized = result.task('unauthorized')
    assert failed(unauthorized) and unauthorized.result['error'] == 'authentication'
    assert PUSH_PASSWORD not in result.stdout
    first = result.task('push')
    assert result.task('check').changed and result.task('check').result['digest'] == first.result['digest']
    assert first.changed and not result.task('push again').changed
    info = result.task('info').result
    assert info['exists'] and info['digest'] == first.result['digest']
    assert result.task('pull').changed and (dest / 'install.wim').read_bytes() == wim.read_bytes()
    assert not result.task('pull again').changed
    assert result.task('repair').changed and (dest / 'unattend.xml').read_text() == '<unattend/>\n'
    assert result.task('rm').changed and not result.task('rm again').changed
    assert result.task('info after').result['exists'] is False
    index = json.loads((oci_receiver.oci_layout / 'index.json').read_text())
    assert index['manifests'] == []
