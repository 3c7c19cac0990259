# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The embedded registry's storage and parsers, in-process: the OCI layout (index.json tags, blobs, what a
start removes, verification), ref-name mapping, htpasswd and Content-Range parsing, the app's /v2/ wiring."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os

import bcrypt
import pytest
from aiohttp.test_utils import TestClient, TestServer

from l3metal_receiver.registry.auth import Htpasswd, basic_header, parse_htpasswd
from l3metal_receiver.registry.errors import RegistryError
from l3metal_receiver.registry.layout import REF_NAME, Layout, parse_digest, split_ref_name, verify_layout
from l3metal_receiver.registry.uploads import parse_content_range
from l3metal_receiver.server import Settings, create_app, parse_args


def sha(data: bytes) -> str:
    return 'sha256:' + hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize('name, default, expected', [
    ('tools/sgdisk:1.0', None, ('tools/sgdisk', '1.0')),
    ('os-images/ubuntu-rootfs:22.04', None, ('os-images/ubuntu-rootfs', '22.04')),
    ('latest', None, None),                       # a bare tag: only with a default repository
    ('latest', 'library/base', ('library/base', 'latest')),
    ('localhost:5000/x:1', None, None),           # a registry host in the name is no repository of ours
    ('Tools/x:1', None, None),                    # repository names are lowercase
    ('x:-bad', None, None),
])
def test_ref_name_mapping(name, default, expected):
    assert split_ref_name(name, default) == expected


def test_digests_the_layout_can_store():
    assert parse_digest(sha(b'x')) == ('sha256', sha(b'x')[7:])
    for bad in ('sha256:abc', 'md5:' + 'a' * 32, 'sha256:' + 'A' * 64, 'sha256:../../' + 'a' * 58, 'nothing'):
        with pytest.raises(RegistryError) as info:
            parse_digest(bad)
        assert info.value.code == 'DIGEST_INVALID' and info.value.status == 400


def test_a_new_layout_is_valid_and_tags_are_index_entries(tmp_path):
    layout = Layout(tmp_path / 'l')
    assert layout.open() == 0
    assert json.loads((tmp_path / 'l' / 'oci-layout').read_text()) == {'imageLayoutVersion': '1.0.0'}
    raw = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]}'
    layout.store_bytes(raw, sha(raw))
    layout.set_tag('tools/a', '1', 'application/vnd.oci.image.manifest.v1+json', sha(raw), len(raw))
    layout.set_tag('tools/a', '1', 'application/vnd.oci.image.manifest.v1+json', sha(raw), len(raw))  # replaces, no duplicate
    layout.set_tag('tools/b', '1', 'application/vnd.oci.image.manifest.v1+json', sha(raw), len(raw))
    index = json.loads((tmp_path / 'l' / 'index.json').read_text())
    assert [m['annotations'][REF_NAME] for m in index['manifests']] == ['tools/a:1', 'tools/b:1']
    assert layout.read_manifest(sha(raw)) == (raw, 'application/vnd.oci.image.manifest.v1+json')
    assert layout.repositories() == ['tools/a', 'tools/b'] and layout.tags('tools/a') == ['1']
    assert layout.delete_tag('tools/a', '1') and not layout.delete_tag('tools/a', '1')
    assert verify_layout(tmp_path / 'l') == ['index.json tools/b:1 -> config: not a descriptor']  # config {} names no blob


def test_foreign_entries_are_kept_and_outside_changes_are_seen(tmp_path):
    root = tmp_path / 'l'
    layout = Layout(root)
    layout.open()
    foreign = {'mediaType': 'application/vnd.oci.image.manifest.v1+json', 'digest': sha(b'f'), 'size': 1, 'annotations': {'x': 'y'}}
    (root / 'index.json').write_text(json.dumps({'schemaVersion': 2, 'manifests': [foreign], 'annotations': {'keep': 'me'}}))
    os.utime(root / 'index.json', ns=(1, 1))  # another tool's write: a different stat signature
    assert layout.tags('r') == []
    layout.set_tag('r', 't', 'application/vnd.oci.image.manifest.v1+json', sha(b'm'), 1)
    index = json.loads((root / 'index.json').read_text())
    assert index['manifests'][0] == foreign and index['annotations'] == {'keep': 'me'} and layout.tags('r') == ['t']


def test_start_removes_what_a_crash_left_and_nothing_else(tmp_path):
    root = tmp_path / 'l'
    layout = Layout(root)
    layout.open()
    (root / '.uploads' / 'half-upload').write_bytes(b'x' * 1000)
    (root / '.index.json.abc.tmp').write_bytes(b'{')
    (root / 'blobs' / 'sha256' / '.deadbeef.tmp').write_bytes(b'partial')
    (root / 'blobs' / 'sha256' / sha(b'kept')[7:]).write_bytes(b'kept')
    assert Layout(root).open() == 3
    assert [p.name for p in (root / 'blobs' / 'sha256').iterdir()] == [sha(b'kept')[7:]]
    assert list((root / '.uploads').iterdir()) == [] and not (root / '.index.json.abc.tmp').exists()


def test_verify_names_tampered_and_missing_blobs(tmp_path):
    root = tmp_path / 'l'
    layout = Layout(root)
    layout.open()
    layer = b'layer'
    (root / 'blobs' / 'sha256' / sha(layer)[7:]).write_bytes(layer)
    raw = json.dumps({'schemaVersion': 2, 'mediaType': 'application/vnd.oci.image.manifest.v1+json',
                      'config': {'mediaType': 'application/vnd.oci.empty.v1+json', 'digest': sha(b'{}'), 'size': 2},
                      'layers': [{'mediaType': 'x', 'digest': sha(layer), 'size': len(layer)}]}).encode()
    layout.store_bytes(raw, sha(raw))
    layout.set_tag('r', 't', 'application/vnd.oci.image.manifest.v1+json', sha(raw), len(raw))
    problems = verify_layout(root)
    assert problems == ['index.json r:t -> config: blob %s is missing' % sha(b'{}')]
    (root / 'blobs' / 'sha256' / sha(layer)[7:]).write_bytes(b'LAYER')
    assert any('hashes to %s' % sha(b'LAYER') in p for p in verify_layout(root))


def test_a_directory_that_is_not_a_layout_is_refused(tmp_path):
    (tmp_path / 'oci-layout').write_text('{"imageLayoutVersion": "2.0.0"}')
    with pytest.raises(ValueError, match='not an OCI image layout 1.x'):
        Layout(tmp_path).open()


def test_htpasswd_takes_bcrypt_only_and_names_the_line(tmp_path):
    good = bcrypt.hashpw(b'pw', bcrypt.gensalt(rounds=4)).decode()
    assert parse_htpasswd('# comment\nalice:%s\n' % good, 'f') == {'alice': good.encode()}
    with pytest.raises(ValueError, match='f line 2 \\(user bob\\): only bcrypt'):
        parse_htpasswd('alice:%s\nbob:{SHA}abc\n' % good, 'f')
    path = tmp_path / 'htpasswd'
    path.write_text('alice:%s\n' % good)
    file = Htpasswd(path)

    async def checks() -> list[bool]:
        return [await file.check('alice', 'pw'), await file.check('alice', 'pw'), await file.check('alice', 'no'), await file.check('eve', 'pw')]
    assert asyncio.run(checks()) == [True, True, False, False]
    path.write_text('alice:%s\n' % bcrypt.hashpw(b'new', bcrypt.gensalt(rounds=4)).decode())
    os.utime(path, ns=(5, 5))
    assert asyncio.run(file.check('alice', 'pw')) is False  # a changed file forgets what it verified


@pytest.mark.parametrize('header, expected', [('0-99', (0, 99)), ('bytes 100-199/1000', (100, 199)), ('bytes=5-5', (5, 5))])
def test_content_range_forms(header, expected):
    assert parse_content_range(header) == expected


@pytest.mark.parametrize('header', ['', '5', '9-3', 'a-b', '-5'])
def test_bad_content_range_is_416(header):
    with pytest.raises(RegistryError) as info:
        parse_content_range(header)
    assert info.value.status == 416


def test_options_need_the_layout_and_check_the_htpasswd(tmp_path, capsys):
    base = ['--data-dir', str(tmp_path / 'd'), '--media-dir', str(tmp_path / 'm')]
    with pytest.raises(SystemExit):
        parse_args(base + ['--oci-pull-auth'])
    assert '--oci-pull-auth needs --oci-layout' in capsys.readouterr().err
    (tmp_path / 'h').write_text('u:plain\n')
    with pytest.raises(SystemExit):
        parse_args(base + ['--oci-layout', str(tmp_path / 'l'), '--oci-htpasswd', str(tmp_path / 'h')])
    assert 'only bcrypt entries' in capsys.readouterr().err
    settings = parse_args(base + ['--oci-layout', str(tmp_path / 'l'), '--oci-allow-delete'])
    assert settings.oci_layout == (tmp_path / 'l').absolute() and settings.oci_allow_delete and not settings.oci_pull_auth


def test_v2_exists_only_with_the_layout_in_process(tmp_path):
    (tmp_path / 'h').write_text('u:%s\n' % bcrypt.hashpw(b'p', bcrypt.gensalt(rounds=4)).decode())

    async def main() -> None:
        plain = Settings(host='127.0.0.1', port=0, data_dir=tmp_path / 'd1', media_dir=tmp_path / 'm1')
        async with TestClient(TestServer(create_app(plain))) as client:
            assert (await client.get('/v2/')).status == 404
        with_registry = Settings(host='127.0.0.1', port=0, data_dir=tmp_path / 'd2', media_dir=tmp_path / 'm2', oci_layout=tmp_path / 'l',
                                 oci_htpasswd=tmp_path / 'h')
        async with TestClient(TestServer(create_app(with_registry))) as client:
            assert (await client.get('/v2/', headers={'Authorization': basic_header('u', 'p')})).status == 200
            assert (await client.get('/healthz')).status == 200
            answer = await client.get('/v2/x/manifests/nope')
            assert answer.status == 404 and (await answer.json())['errors'][0]['code'] == 'MANIFEST_UNKNOWN'
        assert (tmp_path / 'l' / 'index.json').exists()
    asyncio.run(main())


def test_a_broken_index_stops_the_start_with_a_message(tmp_path, capsys):
    from l3metal_receiver.server import main
    layout = tmp_path / 'l'
    Layout(layout).open()
    (layout / 'index.json').write_text('{"schemaVersion": 2, "manifests": ')
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        code = main(['--port', '0', '--data-dir', str(tmp_path / 'd'), '--media-dir', str(tmp_path / 'm'), '--oci-layout', str(layout)])
    finally:
        root.handlers[:] = handlers  # main() sets up the process's logging
        root.setLevel(level)
    assert code == 1
    assert 'index.json is not JSON' in capsys.readouterr().err
    assert (layout / 'index.json').read_text() == '{"schemaVersion": 2, "manifests": '  # nothing stored is lost
