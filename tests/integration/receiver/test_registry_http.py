# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The embedded registry over raw HTTP (``requests``, no registry client): the spec's answers and its error
paths, what a crash leaves, tampering, auth variants.  A receiver process with ``--oci-layout`` on 127.0.0.1."""

from __future__ import annotations

import base64
import concurrent.futures
import hashlib
import json
import os
import socket
import subprocess
import sys

import requests

from fixtures.registry_receiver import PUSH_PASSWORD, PUSH_USER
from l3metal_lab.waiting import wait_for

AUTH = (PUSH_USER, PUSH_PASSWORD)


def sha(data: bytes) -> str:
    return 'sha256:' + hashlib.sha256(data).hexdigest()


def url(server, path: str) -> str:
    return 'http://%s%s' % (server.host, path)


def absolute(server, location: str) -> str:
    return location if location.startswith('http') else url(server, location)


def push_blob(server, repo: str, data: bytes) -> str:
    start = requests.post(url(server, '/v2/%s/blobs/uploads/' % repo), auth=AUTH, timeout=30)
    assert start.status_code == 202, start.text
    done = requests.put(absolute(server, start.headers['Location']), params={'digest': sha(data)}, data=data, auth=AUTH, timeout=30)
    assert done.status_code == 201, done.text
    return sha(data)


def image_manifest(server, repo: str, layer: bytes, config: bytes = b'{}') -> bytes:
    layer_digest = push_blob(server, repo, layer)
    config_digest = push_blob(server, repo, config)
    return json.dumps({'schemaVersion': 2, 'mediaType': 'application/vnd.oci.image.manifest.v1+json',
                       'config': {'mediaType': 'application/vnd.oci.empty.v1+json', 'digest': config_digest, 'size': len(config)},
                       'layers': [{'mediaType': 'application/vnd.oci.image.layer.v1.tar', 'digest': layer_digest, 'size': len(layer)}]}).encode()


def put_manifest(server, repo: str, reference: str, raw: bytes, media_type: str = 'application/vnd.oci.image.manifest.v1+json') -> requests.Response:
    return requests.put(url(server, '/v2/%s/manifests/%s' % (repo, reference)), data=raw, headers={'Content-Type': media_type}, auth=AUTH, timeout=30)


def error_code(response: requests.Response) -> str:
    return response.json()['errors'][0]['code']


def blob_files(server) -> set[str]:
    return {p.name for p in (server.oci_layout / 'blobs' / 'sha256').iterdir()}


def test_without_the_option_v2_is_404(receiver):
    assert requests.get(receiver.url + '/v2/', timeout=10).status_code == 404


def test_base_endpoint_challenges_and_names_the_api(oci_receiver):
    anonymous = requests.get(url(oci_receiver, '/v2/'), timeout=10)
    assert anonymous.status_code == 401 and anonymous.headers['WWW-Authenticate'] == 'Basic realm="l3metal-receiver"'
    assert error_code(anonymous) == 'UNAUTHORIZED'
    good = requests.get(url(oci_receiver, '/v2/'), auth=AUTH, timeout=10)
    assert good.status_code == 200 and good.headers['Docker-Distribution-API-Version'] == 'registry/2.0'
    assert requests.get(url(oci_receiver, '/v2/'), auth=(PUSH_USER, 'nope'), timeout=10).status_code == 401


def test_manifest_by_tag_and_digest_with_media_type_and_digest_header(oci_receiver):
    raw = image_manifest(oci_receiver, 'os/img', b'layer-bytes' * 100)
    created = put_manifest(oci_receiver, 'os/img', 'v1', raw)
    assert created.status_code == 201 and created.headers['Docker-Content-Digest'] == sha(raw)
    assert created.headers['Location'] == '/v2/os/img/manifests/' + sha(raw)
    for reference in ('v1', sha(raw)):
        got = requests.get(url(oci_receiver, '/v2/os/img/manifests/' + reference), timeout=10)
        assert got.status_code == 200 and got.content == raw
        assert got.headers['Content-Type'] == 'application/vnd.oci.image.manifest.v1+json'
        assert got.headers['Docker-Content-Digest'] == sha(raw)
        head = requests.head(url(oci_receiver, '/v2/os/img/manifests/' + reference), timeout=10)
        assert head.status_code == 200 and head.content == b'' and int(head.headers['Content-Length']) == len(raw)
    unknown = requests.get(url(oci_receiver, '/v2/os/img/manifests/v2'), timeout=10)
    assert unknown.status_code == 404 and error_code(unknown) == 'MANIFEST_UNKNOWN'
    assert error_code(requests.get(url(oci_receiver, '/v2/os/other/tags/list'), timeout=10)) == 'NAME_UNKNOWN'

    index = json.dumps({'schemaVersion': 2, 'mediaType': 'application/vnd.oci.image.index.v1+json',
                        'manifests': [{'mediaType': 'application/vnd.oci.image.manifest.v1+json', 'digest': sha(raw), 'size': len(raw),
                                       'platform': {'architecture': 'amd64', 'os': 'linux'}}]}).encode()
    assert put_manifest(oci_receiver, 'os/img', 'multi', index, 'application/vnd.oci.image.index.v1+json').status_code == 201
    got = requests.get(url(oci_receiver, '/v2/os/img/manifests/multi'), timeout=10)
    assert got.headers['Content-Type'] == 'application/vnd.oci.image.index.v1+json' and got.content == index


def test_blob_range_is_206_and_416_as_the_media_path(oci_receiver):
    data = os.urandom(100_003)
    digest = push_blob(oci_receiver, 'r/blob', data)
    full = requests.get(url(oci_receiver, '/v2/r/blob/blobs/' + digest), timeout=10)
    assert full.status_code == 200 and full.content == data and full.headers['Docker-Content-Digest'] == digest
    part = requests.get(url(oci_receiver, '/v2/r/blob/blobs/' + digest), headers={'Range': 'bytes=1000-1999'}, timeout=10)
    assert part.status_code == 206 and part.content == data[1000:2000] and part.headers['Content-Range'] == 'bytes 1000-1999/100003'
    beyond = requests.get(url(oci_receiver, '/v2/r/blob/blobs/' + digest), headers={'Range': 'bytes=200000-'}, timeout=10)
    assert beyond.status_code == 416 and beyond.headers['Content-Range'] == 'bytes */100003'
    missing = requests.get(url(oci_receiver, '/v2/r/blob/blobs/' + sha(b'never pushed')), timeout=10)
    assert missing.status_code == 404 and error_code(missing) == 'BLOB_UNKNOWN'


def test_digest_mismatch_is_refused_and_nothing_becomes_visible(oci_receiver):
    before = blob_files(oci_receiver)
    start = requests.post(url(oci_receiver, '/v2/r/x/blobs/uploads/'), auth=AUTH, timeout=10)
    claimed = sha(b'what the client claims')
    refused = requests.put(absolute(oci_receiver, start.headers['Location']), params={'digest': claimed}, data=b'other bytes', auth=AUTH, timeout=10)
    assert refused.status_code == 400 and error_code(refused) == 'DIGEST_INVALID'
    assert blob_files(oci_receiver) == before
    assert requests.head(url(oci_receiver, '/v2/r/x/blobs/' + claimed), timeout=10).status_code == 404
    assert list((oci_receiver.oci_layout / '.uploads').iterdir()) == []  # the session's bytes are gone too
    # Monolithic POST with a wrong digest: the same.
    mono = requests.post(url(oci_receiver, '/v2/r/x/blobs/uploads/'), params={'digest': claimed}, data=b'x', auth=AUTH, timeout=10)
    assert mono.status_code == 400 and blob_files(oci_receiver) == before
    # A manifest PUT by digest that does not match its bytes, and one naming a blob not stored.
    raw = image_manifest(oci_receiver, 'r/x', b'layer')
    assert error_code(put_manifest(oci_receiver, 'r/x', sha(raw + b' '), raw)) == 'DIGEST_INVALID'
    dangling = raw.replace(sha(b'layer').encode(), sha(b'not stored').encode())
    answer = put_manifest(oci_receiver, 'r/x', 'dangling', dangling)
    assert answer.status_code == 400 and error_code(answer) == 'MANIFEST_BLOB_UNKNOWN'
    assert requests.get(url(oci_receiver, '/v2/r/x/manifests/dangling'), timeout=10).status_code == 404


def test_chunked_upload_in_order_out_of_order_416_and_status(oci_receiver):
    data = os.urandom(300_000)
    start = requests.post(url(oci_receiver, '/v2/r/chunks/blobs/uploads/'), auth=AUTH, timeout=10)
    assert start.status_code == 202 and start.headers['Range'] == '0-0'
    location = absolute(oci_receiver, start.headers['Location'])
    first = requests.patch(location, data=data[:100_000], headers={'Content-Range': '0-99999'}, auth=AUTH, timeout=10)
    assert first.status_code == 202 and first.headers['Range'] == '0-99999'
    skipped = requests.patch(location, data=data[200_000:], headers={'Content-Range': '200000-299999'}, auth=AUTH, timeout=10)
    assert skipped.status_code == 416 and skipped.headers['Range'] == '0-99999' and error_code(skipped) == 'BLOB_UPLOAD_INVALID'
    status = requests.get(location, auth=AUTH, timeout=10)
    assert status.status_code == 204 and status.headers['Range'] == '0-99999'  # resumable from where it stands
    second = requests.patch(location, data=data[100_000:200_000], headers={'Content-Range': '100000-199999'}, auth=AUTH, timeout=10)
    assert second.status_code == 202
    done = requests.put(absolute(oci_receiver, second.headers['Location']), params={'digest': sha(data)}, data=data[200_000:],
                        headers={'Content-Range': '200000-299999'}, auth=AUTH, timeout=10)
    assert done.status_code == 201
    assert requests.get(url(oci_receiver, '/v2/r/chunks/blobs/' + sha(data)), timeout=10).content == data
    assert requests.get(location, auth=AUTH, timeout=10).status_code == 404  # the session ended


def test_cross_repository_mount_and_monolithic_post(oci_receiver):
    data = b'shared layer'
    mono = requests.post(url(oci_receiver, '/v2/a/one/blobs/uploads/'), params={'digest': sha(data)}, data=data, auth=AUTH, timeout=10)
    assert mono.status_code == 201 and mono.headers['Docker-Content-Digest'] == sha(data)
    mounted = requests.post(url(oci_receiver, '/v2/b/two/blobs/uploads/'), params={'mount': sha(data), 'from': 'a/one'}, auth=AUTH, timeout=10)
    assert mounted.status_code == 201 and mounted.headers['Location'] == '/v2/b/two/blobs/' + sha(data)
    fallback = requests.post(url(oci_receiver, '/v2/b/two/blobs/uploads/'), params={'mount': sha(b'absent'), 'from': 'a/one'}, auth=AUTH, timeout=10)
    assert fallback.status_code == 202  # not there: an ordinary upload session, as the spec says


def test_tags_list_pagination(oci_receiver):
    raw = image_manifest(oci_receiver, 'p/tags', b'l')
    names = ['v%02d' % i for i in range(7)]
    for name in reversed(names):
        assert put_manifest(oci_receiver, 'p/tags', name, raw).status_code == 201
    assert requests.get(url(oci_receiver, '/v2/p/tags/tags/list'), timeout=10).json() == {'name': 'p/tags', 'tags': names}
    page = requests.get(url(oci_receiver, '/v2/p/tags/tags/list'), params={'n': 3}, timeout=10)
    assert page.json()['tags'] == names[:3] and page.headers['Link'] == '</v2/p/tags/tags/list?n=3&last=v02>; rel="next"'
    rest = requests.get(url(oci_receiver, '/v2/p/tags/tags/list'), params={'n': 10, 'last': 'v02'}, timeout=10)
    assert rest.json()['tags'] == names[3:] and 'Link' not in rest.headers


def test_delete_by_tag_and_digest_and_disabled_delete(oci_receiver_factory):
    server = oci_receiver_factory()
    raw = image_manifest(server, 'd/x', b'l')
    put_manifest(server, 'd/x', 'a', raw)
    put_manifest(server, 'd/x', 'b', raw)
    assert requests.delete(url(server, '/v2/d/x/manifests/a'), auth=AUTH, timeout=10).status_code == 202
    assert requests.get(url(server, '/v2/d/x/tags/list'), timeout=10).json()['tags'] == ['b']
    assert requests.delete(url(server, '/v2/d/x/manifests/' + sha(raw)), auth=AUTH, timeout=10).status_code == 202
    assert requests.get(url(server, '/v2/d/x/manifests/b'), timeout=10).status_code == 404
    assert requests.delete(url(server, '/v2/d/x/manifests/b'), timeout=10).status_code == 401

    kept = oci_receiver_factory(delete=False)
    raw = image_manifest(kept, 'd/x', b'l')
    put_manifest(kept, 'd/x', 'a', raw)
    refused = requests.delete(url(kept, '/v2/d/x/manifests/a'), auth=AUTH, timeout=10)
    assert refused.status_code == 405 and error_code(refused) == 'UNSUPPORTED'
    assert requests.get(url(kept, '/v2/d/x/manifests/a'), timeout=10).status_code == 200


def test_tampered_blobs_are_detected(oci_receiver):
    raw = image_manifest(oci_receiver, 't/x', b'original layer')
    put_manifest(oci_receiver, 't/x', 'v1', raw)
    verify = [sys.executable, '-m', 'l3metal_receiver.registry', 'verify', str(oci_receiver.oci_layout)]
    assert subprocess.run(verify, capture_output=True, check=False).returncode == 0
    layer = oci_receiver.oci_layout / 'blobs' / 'sha256' / sha(b'original layer').split(':')[1]
    layer.write_bytes(b'tampered layer')
    found = subprocess.run(verify, capture_output=True, text=True, check=False)
    assert found.returncode == 1 and sha(b'original layer') in found.stdout and 'tampered' in found.stdout
    manifest = oci_receiver.oci_layout / 'blobs' / 'sha256' / sha(raw).split(':')[1]
    manifest.write_bytes(raw.replace(b'"schemaVersion": 2', b'"schemaVersion":2'))
    served = requests.get(url(oci_receiver, '/v2/t/x/manifests/v1'), timeout=10)
    assert served.status_code == 500 and error_code(served) == 'MANIFEST_INVALID' and 'corrupt' in served.json()['errors'][0]['message']


def test_kill_9_during_an_upload_leaves_no_blob_and_the_start_cleans_up(oci_receiver):
    start = requests.post(url(oci_receiver, '/v2/k/x/blobs/uploads/'), auth=AUTH, timeout=10)
    location = absolute(oci_receiver, start.headers['Location'])
    data = os.urandom(200_000)
    assert requests.patch(location, data=data[:100_000], headers={'Content-Range': '0-99999'}, auth=AUTH, timeout=10).status_code == 202
    before = blob_files(oci_receiver)
    assert len(list((oci_receiver.oci_layout / '.uploads').iterdir())) == 1
    oci_receiver.kill()
    oci_receiver.start()
    assert list((oci_receiver.oci_layout / '.uploads').iterdir()) == []
    assert blob_files(oci_receiver) == before
    gone = requests.put(location, params={'digest': sha(data)}, data=data[100_000:], auth=AUTH, timeout=10)
    assert gone.status_code == 404 and error_code(gone) == 'BLOB_UPLOAD_UNKNOWN'  # the client starts again


def test_concurrent_pushes_of_the_same_blob(oci_receiver):
    data = os.urandom(2_000_000)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        digests = list(pool.map(lambda _i: push_blob(oci_receiver, 'c/x', data), range(8)))
    assert digests == [sha(data)] * 8
    assert requests.get(url(oci_receiver, '/v2/c/x/blobs/' + sha(data)), timeout=30).content == data
    assert list((oci_receiver.oci_layout / '.uploads').iterdir()) == []


def test_pull_auth_and_the_api_token(oci_receiver_factory):
    server = oci_receiver_factory(pull_auth=True, api_token='api-token-0123456789')
    raw = image_manifest(server, 'a/x', b'l')
    put_manifest(server, 'a/x', 'v1', raw)
    anonymous = requests.get(url(server, '/v2/a/x/manifests/v1'), timeout=10)
    assert anonymous.status_code == 401 and 'Basic' in anonymous.headers['WWW-Authenticate']
    assert requests.get(url(server, '/v2/a/x/manifests/v1'), auth=AUTH, timeout=10).status_code == 200
    assert requests.get(url(server, '/v2/a/x/manifests/v1'), auth=('token', 'api-token-0123456789'), timeout=10).status_code == 200
    bearer = requests.get(url(server, '/v2/a/x/manifests/v1'), headers={'Authorization': 'Bearer api-token-0123456789'}, timeout=10)
    assert bearer.status_code == 200
    assert requests.get(url(server, '/v2/a/x/manifests/v1'), auth=('token', 'wrong'), timeout=10).status_code == 401
    # the job API is unaffected: still its own Bearer token
    assert requests.get(server.url + '/api/v1/jobs', auth=AUTH, timeout=10).status_code == 401


def test_without_credentials_configured_push_is_denied(oci_receiver_factory):
    server = oci_receiver_factory(htpasswd=False)
    assert requests.get(url(server, '/v2/'), timeout=10).status_code == 200
    denied = requests.post(url(server, '/v2/r/x/blobs/uploads/'), timeout=10)
    assert denied.status_code == 403 and error_code(denied) == 'DENIED'


def test_bad_names_and_unknown_endpoints_are_spec_errors(oci_receiver):
    assert error_code(requests.get(url(oci_receiver, '/v2/UPPER/manifests/v1'), timeout=10)) in ('NAME_INVALID', 'NOT_FOUND')
    answer = requests.get(url(oci_receiver, '/v2/r/x/manifests/sha256:short'), timeout=10)
    assert answer.status_code == 400 and error_code(answer) == 'DIGEST_INVALID'
    assert requests.get(url(oci_receiver, '/v2/r/x/nothing'), timeout=10).status_code in (400, 404)


def test_referrers_list_the_manifests_that_name_a_subject(oci_receiver):
    raw = image_manifest(oci_receiver, 'ref/x', b'the image')
    put_manifest(oci_receiver, 'ref/x', 'v1', raw)
    empty = requests.get(url(oci_receiver, '/v2/ref/x/referrers/' + sha(raw)), timeout=10)
    assert empty.status_code == 200 and empty.json()['manifests'] == []
    config = push_blob(oci_receiver, 'ref/x', b'{}')
    signature = json.dumps({'schemaVersion': 2, 'mediaType': 'application/vnd.oci.image.manifest.v1+json',
                            'artifactType': 'application/vnd.example.signature', 'annotations': {'who': 'ci'},
                            'config': {'mediaType': 'application/vnd.oci.empty.v1+json', 'digest': config, 'size': 2}, 'layers': [],
                            'subject': {'mediaType': 'application/vnd.oci.image.manifest.v1+json', 'digest': sha(raw), 'size': len(raw)}}).encode()
    created = put_manifest(oci_receiver, 'ref/x', sha(signature), signature)
    assert created.status_code == 201 and created.headers['OCI-Subject'] == sha(raw)
    listed = requests.get(url(oci_receiver, '/v2/ref/x/referrers/' + sha(raw)), timeout=10)
    assert listed.headers['Content-Type'] == 'application/vnd.oci.image.index.v1+json'
    assert listed.json()['manifests'] == [{'mediaType': 'application/vnd.oci.image.manifest.v1+json', 'digest': sha(signature),
                                           'size': len(signature), 'artifactType': 'application/vnd.example.signature',
                                           'annotations': {'who': 'ci'}}]
    filtered = requests.get(url(oci_receiver, '/v2/ref/x/referrers/' + sha(raw)), params={'artifactType': 'application/other'}, timeout=10)
    assert filtered.json()['manifests'] == [] and filtered.headers['OCI-Filters-Applied'] == 'artifactType'
    # the untagged referrer is an index.json entry without a ref name: a root of the layout
    entries = json.loads((oci_receiver.oci_layout / 'index.json').read_text())['manifests']
    assert [e for e in entries if e['digest'] == sha(signature)] == [
        {'mediaType': 'application/vnd.oci.image.manifest.v1+json', 'digest': sha(signature), 'size': len(signature)}]
    assert requests.delete(url(oci_receiver, '/v2/ref/x/manifests/' + sha(signature)), auth=AUTH, timeout=10).status_code == 202
    assert requests.get(url(oci_receiver, '/v2/ref/x/referrers/' + sha(raw)), timeout=10).json()['manifests'] == []


def test_a_chunk_that_breaks_off_leaves_a_resumable_session(oci_receiver):
    data = os.urandom(200_000)
    start = requests.post(url(oci_receiver, '/v2/r/resume/blobs/uploads/'), auth=AUTH, timeout=10)
    path = start.headers['Location']
    credentials = base64.b64encode(('%s:%s' % AUTH).encode()).decode()
    with socket.create_connection(('127.0.0.1', oci_receiver.port), timeout=10) as sock:
        sock.sendall(('PATCH %s HTTP/1.1\r\nHost: x\r\nAuthorization: Basic %s\r\nContent-Type: application/octet-stream\r\n'
                      'Content-Length: 100000\r\nContent-Range: 0-99999\r\n\r\n' % (path, credentials)).encode() + data[:60_000])
    # the client is gone after 60,000 bytes: the session holds exactly those, and says so

    def stands() -> str | None:
        return requests.get(absolute(oci_receiver, path), auth=AUTH, timeout=10).headers.get('Range')

    wait_for(lambda: stands() == '0-59999', what='the session to hold the 60,000 bytes that arrived')
    status = requests.get(absolute(oci_receiver, path), auth=AUTH, timeout=10)
    assert status.status_code == 204 and status.headers['Range'] == '0-59999'
    rest = requests.patch(absolute(oci_receiver, path), data=data[60_000:], headers={'Content-Range': '60000-199999'}, auth=AUTH, timeout=10)
    assert rest.status_code == 202
    done = requests.put(absolute(oci_receiver, rest.headers['Location']), params={'digest': sha(data)}, auth=AUTH, timeout=10)
    assert done.status_code == 201
    assert requests.get(url(oci_receiver, '/v2/r/resume/blobs/' + sha(data)), timeout=10).content == data


def test_a_stalled_chunk_is_408_after_the_body_timeout_and_resumable(oci_receiver_factory):
    server = oci_receiver_factory(extra=['--body-timeout', '1'])
    data = os.urandom(100_000)
    start = requests.post(url(server, '/v2/r/stall/blobs/uploads/'), auth=AUTH, timeout=10)
    path = start.headers['Location']
    credentials = base64.b64encode(('%s:%s' % AUTH).encode()).decode()
    with socket.create_connection(('127.0.0.1', server.port), timeout=20) as sock:
        sock.sendall(('PATCH %s HTTP/1.1\r\nHost: x\r\nAuthorization: Basic %s\r\nContent-Type: application/octet-stream\r\n'
                      'Content-Length: 100000\r\nContent-Range: 0-99999\r\n\r\n' % (path, credentials)).encode() + data[:30_000])
        answer = b''
        while b'\r\n\r\n' not in answer:  # the receiver answers on its own once the body has paused for 1 s
            piece = sock.recv(65536)
            if not piece:
                break
            answer += piece
    head = answer.split(b'\r\n\r\n')[0].decode()
    assert head.startswith('HTTP/1.1 408') and 'Range: 0-29999' in head, head
    status = requests.get(absolute(server, path), auth=AUTH, timeout=10)
    assert status.status_code == 204 and status.headers['Range'] == '0-29999'
    done = requests.put(absolute(server, path), params={'digest': sha(data)}, data=data[30_000:], headers={'Content-Range': '30000-99999'},
                        auth=AUTH, timeout=10)
    assert done.status_code == 201
    assert requests.get(url(server, '/v2/r/stall/blobs/' + sha(data)), timeout=10).content == data
