# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""oci_artifact and oci_artifact_info through ansible-playbook against a real distribution registry."""

from __future__ import annotations

import base64
import json
import os

from l3metal_oci.push import PushFile, push_artifact
from l3metal_lab.archives import member, rootfs_members, snapshot, write_tar
from l3metal_lab.playbook import localhost_play

ROOTFS_TYPE = 'application/vnd.l3metal.rootfs.v1+tar'


def task(name: str, module: str, check: bool = False, diff: bool = False, **options) -> dict:
    result = {'name': name, 'l3metal.provision.' + module: options, 'ignore_errors': True}
    if check:
        result['check_mode'] = True
    if diff:
        result['diff'] = True
    return result


def stat(name: str, path) -> dict:
    return {'name': name, 'ansible.builtin.stat': {'path': str(path)}}


def run(ansible_playbook, *tasks: dict):
    """One playbook for many steps (check-mode steps are marked per task): each ansible-playbook start costs seconds."""
    return ansible_playbook(localhost_play(list(tasks)))


def failed(result) -> bool:
    return result.status in ('failed', 'ignored') or bool(result.result.get('failed'))


def test_push_is_idempotent_and_check_mode_uploads_nothing(ansible_playbook, registry, tmp_path):
    rootfs = write_tar(tmp_path / 'rootfs.tar.gz', rootfs_members(), 'gzip')
    (tmp_path / 'notes.txt').write_text('built by CI\n')
    ref = '%s/os-images/ubuntu-rootfs:22.04' % registry.host
    push = dict(reference=ref, state='present', insecure=True, artifact_type=ROOTFS_TYPE,
                files=[str(rootfs), {'path': str(tmp_path / 'notes.txt'), 'media_type': 'text/plain', 'title': 'NOTES',
                                     'annotations': {'org.example.kind': 'notes'}}],
                annotations={'org.opencontainers.image.version': '22.04.5'})
    changed = {**push, 'annotations': {'org.opencontainers.image.version': '22.04.6'}}
    info = dict(reference=ref, insecure=True)
    result = run(ansible_playbook,
                 task('check', 'oci_artifact', check=True, **push),
                 task('info before', 'oci_artifact_info', **info),
                 task('push', 'oci_artifact', diff=True, **push),
                 task('push again', 'oci_artifact', **push),
                 task('check again', 'oci_artifact', check=True, **push),
                 task('check changed', 'oci_artifact', check=True, **changed),
                 task('info', 'oci_artifact_info', **info)).assert_ok()
    assert not any(failed(t) for t in result.tasks), result.output

    check, first = result.task('check'), result.task('push')
    assert check.changed and check.result['previous_digest'] is None
    assert result.task('info before').result['exists'] is False  # nothing uploaded in check mode
    assert first.changed and first.result['digest'] == check.result['digest']  # check mode predicted the exact digest
    assert [layer['action'] for layer in first.result['layers']] == ['uploaded', 'uploaded']
    assert first.result['diff'] == {'before': {'digest': None}, 'after': {'digest': first.result['digest']}}
    second = result.task('push again')
    assert not second.changed and second.result['digest'] == first.result['digest']
    assert not result.task('check again').changed
    predicted = result.task('check changed')
    assert predicted.changed and predicted.result['previous_digest'] == first.result['digest'] != predicted.result['digest']

    raw, headers = registry.get_manifest_raw('os-images/ubuntu-rootfs', '22.04')  # still the first push
    manifest = json.loads(raw)
    assert headers['Docker-Content-Digest'] == first.result['digest']
    assert manifest['artifactType'] == ROOTFS_TYPE and manifest['config']['mediaType'] == 'application/vnd.oci.empty.v1+json'
    assert manifest['annotations'] == {'org.opencontainers.image.version': '22.04.5'}
    assert [(layer['mediaType'], layer['annotations']) for layer in manifest['layers']] == [
        ('application/vnd.oci.image.layer.v1.tar+gzip', {'org.opencontainers.image.title': 'rootfs.tar.gz'}),
        ('text/plain', {'org.opencontainers.image.title': 'NOTES', 'org.example.kind': 'notes'})]
    assert registry.get_blob_raw('os-images/ubuntu-rootfs', manifest['layers'][0]['digest']) == rootfs.read_bytes()

    info_result = result.task('info')
    assert not info_result.changed and info_result.result['exists'] and info_result.result['digest'] == first.result['digest']
    assert info_result.result['artifact_type'] == ROOTFS_TYPE and info_result.result['annotations'] == manifest['annotations']
    assert [(layer['title'], layer['size']) for layer in info_result.result['layers']] == [('rootfs.tar.gz', rootfs.stat().st_size), ('NOTES', 12)]
    assert info_result.result['size'] == 2 + rootfs.stat().st_size + 12 and info_result.result['manifest'] == manifest


def test_pull_unpack_is_idempotent_and_check_mode_writes_nothing(ansible_playbook, registry, tmp_path):
    rootfs = write_tar(tmp_path / 'rootfs.tar.gz', rootfs_members(), 'gzip')
    newer = write_tar(tmp_path / 'rootfs-v2.tar.gz', rootfs_members() + [member('etc/version', b'2\n')], 'gzip')
    ref = '%s/os-images/ubuntu-rootfs:22.04' % registry.host
    dest = tmp_path / 'new-root'
    pull = dict(reference=ref, state='pulled', dest=str(dest), unpack=True, insecure=True)
    result = run(ansible_playbook,
                 task('push', 'oci_artifact', reference=ref, files=[str(rootfs)], insecure=True),
                 task('check', 'oci_artifact', check=True, **pull),
                 stat('dest after check', dest),
                 task('pull', 'oci_artifact', **pull),
                 task('pull again', 'oci_artifact', **pull),
                 task('check again', 'oci_artifact', check=True, **pull),
                 # a new version under the same tag: check mode sees it, the run replaces the tree
                 task('push v2', 'oci_artifact', reference=ref, files=[str(newer)], insecure=True),
                 task('check v2', 'oci_artifact', check=True, diff=True, **pull),
                 stat('version after check', dest / 'etc/version'),
                 task('pull v2', 'oci_artifact', **pull)).assert_ok()
    assert not any(failed(t) for t in result.tasks), result.output

    assert result.task('check').changed and not result.task('dest after check').result['stat']['exists']
    first = result.task('pull')
    assert first.changed and first.result['layers'][0]['action'] == 'unpacked'
    assert first.result['bytes_downloaded'] == rootfs.stat().st_size
    second = result.task('pull again')
    assert not second.changed and second.result['bytes_downloaded'] == 0 and second.result['digest'] == first.result['digest']
    assert not result.task('check again').changed
    predicted = result.task('check v2')
    assert predicted.changed and predicted.result['diff']['before']['digest'] == first.result['digest']
    assert not result.task('version after check').result['stat']['exists']
    assert result.task('pull v2').changed and (dest / 'etc/version').read_text() == '2\n'
    tree = snapshot(dest)
    assert tree['usr/bin/passwd'].mode == 0o4755 and tree['usr/bin/vi'].link == '/etc/alternatives/vi'


def test_pull_files_by_title_and_delete(ansible_playbook, registry, tmp_path):
    wim = tmp_path / 'install.wim'
    wim.write_bytes(os.urandom(300000))
    (tmp_path / 'unattend.xml').write_text('<unattend/>\n')
    ref = '%s/os-images/windows-wim:2022' % registry.host
    dest = tmp_path / 'downloads'
    pull = dict(reference=ref, state='pulled', dest=str(dest), insecure=True)
    absent = dict(reference=ref, state='absent', insecure=True)
    result = run(ansible_playbook,
                 task('push', 'oci_artifact', reference=ref, insecure=True, files=[str(wim), str(tmp_path / 'unattend.xml')]),
                 task('pull', 'oci_artifact', **pull),
                 task('pull again', 'oci_artifact', **pull),
                 {'name': 'edit', 'ansible.builtin.copy': {'dest': str(dest / 'unattend.xml'), 'content': 'edited\n'}},
                 task('repair', 'oci_artifact', **pull),
                 task('check rm', 'oci_artifact', check=True, **absent),
                 task('info after check', 'oci_artifact_info', reference=ref, insecure=True),
                 task('rm', 'oci_artifact', **absent),
                 task('rm again', 'oci_artifact', **absent),
                 task('info', 'oci_artifact_info', reference=ref, insecure=True)).assert_ok()
    assert not any(failed(t) for t in result.tasks), result.output

    first = result.task('pull')
    assert first.changed and sorted(os.listdir(dest)) == ['install.wim', 'unattend.xml']
    assert (dest / 'install.wim').read_bytes() == wim.read_bytes()
    assert first.result['layers'][0]['media_type'] == 'application/x-ms-wim'
    again = result.task('pull again')
    assert not again.changed and again.result['bytes_downloaded'] == 0
    repaired = result.task('repair')
    assert repaired.changed and [layer['action'] for layer in repaired.result['layers']] == ['unchanged', 'downloaded']
    assert (dest / 'unattend.xml').read_text() == '<unattend/>\n'

    assert result.task('check rm').changed and result.task('info after check').result['exists']
    gone = result.task('rm')
    assert gone.changed and gone.result['digest'] == result.task('push').result['digest'] and registry.tags('os-images/windows-wim') == []
    assert not result.task('rm again').changed and result.task('info').result['exists'] is False


def test_auth_tls_and_errors_through_modules(ansible_playbook, auth_registry, tmp_path):
    payload = write_tar(tmp_path / 'tools.tar', [member('bin/tool', b'#!/bin/sh\n', mode=0o755)], 'none')
    ref = '%s/tools/sgdisk:1.0' % auth_registry.host
    ca = str(auth_registry.ca_path)
    config = tmp_path / 'auth.json'
    config.write_text(json.dumps({'auths': {auth_registry.host: {'auth': base64.b64encode(b'testuser:testpass').decode()}}}))
    result = run(
        ansible_playbook,
        task('push', 'oci_artifact', reference=ref, files=[str(payload)], username='testuser', password='testpass', ca_path=ca),
        task('wrong', 'oci_artifact', reference=ref, files=[str(payload)], username='testuser', password='Sup3rWrong', ca_path=ca),
        task('nocreds', 'oci_artifact_info', reference=ref, ca_path=ca),
        task('noca', 'oci_artifact_info', reference=ref, docker_config=str(config)),
        task('config', 'oci_artifact', reference=ref, state='pulled', dest=str(tmp_path / 'out'), unpack=True,
             docker_config=str(config), ca_path=ca),
        task('unknown', 'oci_artifact_info', reference='%s/tools/sgdisk:9.9' % auth_registry.host, docker_config=str(config), ca_path=ca),
        task('unknown_pull', 'oci_artifact', reference='%s/tools/sgdisk:9.9' % auth_registry.host, state='pulled',
             dest=str(tmp_path / 'none'), docker_config=str(config), ca_path=ca),
        task('badref', 'oci_artifact_info', reference='sgdisk:1.0'),
        task('nofiles', 'oci_artifact', reference=ref),
    )
    assert result.task('push').changed and not failed(result.task('push'))
    wrong = result.task('wrong')
    assert failed(wrong) and wrong.result['error'] == 'authentication' and 'wrong username/password' in wrong.result['msg']
    assert 'Sup3rWrong' not in result.stdout and 'Sup3rWrong' not in json.dumps(wrong.result)
    assert failed(result.task('nocreds')) and 'needs credentials' in result.task('nocreds').result['msg']
    noca = result.task('noca')
    assert failed(noca) and 'ca_path' in noca.result['msg'] and noca.result['error'] == 'registry'
    assert result.task('config').changed and (tmp_path / 'out/bin/tool').stat().st_mode & 0o777 == 0o755
    assert result.task('unknown').result['exists'] is False and not failed(result.task('unknown'))
    unknown_pull = result.task('unknown_pull')
    assert failed(unknown_pull) and unknown_pull.result['error'] == 'not_found' and not (tmp_path / 'none').exists()
    badref = result.task('badref')
    assert failed(badref) and badref.result['error'] == 'invalid_reference' and 'registry host' in badref.result['msg']
    assert 'Traceback' not in badref.result.get('module_stderr', '') + badref.result['msg']
    assert failed(result.task('nofiles')) and 'files' in result.task('nofiles').result['msg']


def test_tampered_blob_fails_the_task_and_leaves_no_target(ansible_playbook, registry, tmp_path):
    layer = write_tar(tmp_path / 'rootfs.tar', [member('etc/hostname', b'x\n'), member('big', os.urandom(1 << 20))], 'none')
    ref = '%s/os/rootfs:1' % registry.host
    pushed = push_artifact(ref, [PushFile(str(layer))], insecure=True)
    layer_digest = pushed.manifest['layers'][0]['digest']
    blob = registry.blob_path(layer_digest)
    data = bytearray(blob.read_bytes())
    data[-2000] ^= 1
    blob.write_bytes(bytes(data))
    dest = tmp_path / 'root'
    result = run(ansible_playbook, task('pull', 'oci_artifact', reference=ref, state='pulled', dest=str(dest), unpack=True, insecure=True))
    pull = result.task('pull')
    assert failed(pull) and pull.result['error'] == 'digest_mismatch' and layer_digest in pull.result['msg']
    assert not dest.exists() and not [p for p in tmp_path.iterdir() if '.oci-' in p.name]
