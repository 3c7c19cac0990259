# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The media fast path (connections.ReceiverProtocol answering /media/ and the embedded registry's blob GETs itself)
against aiohttp's path, differentially: two receivers on the same media directory (and each on a copy of one OCI
layout), one with ``--no-media-fast-path``, sent the same bytes on raw sockets
(pipelined, split across packets, HEAD, 304, 412, 416, several ranges, keep-alive then other requests); every answer
must be the same (status line, headers but Date, body, and the access-log line).  That the fast path is what answered
is tested in tests/unit/receiver/test_media_fast_requests.py (aiohttp's media handler never called)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import time

import pytest

SIZE = 3 * 1024 * 1024 + 17  # larger than a loopback socket's first buffer: some answers wait for writability


@pytest.fixture(scope='module')
def media(tmp_path_factory):
    root = tmp_path_factory.mktemp('media')
    data = os.urandom(SIZE)
    (root / 'maintenance.iso').write_bytes(data)
    (root / 'empty.iso').write_bytes(b'')
    (root / '.hidden.iso').write_bytes(b'secret')
    (root / 'sub').mkdir()
    (root / 'sub' / 'small.img').write_bytes(b'0123456789')
    os.symlink('maintenance.iso', root / 'current.iso')
    return root, data


@pytest.fixture(scope='module')
def layout(tmp_path_factory):
    """An OCI layout holding one blob (the receivers create the rest of the layout); (directory, digest, bytes)."""
    root = tmp_path_factory.mktemp('layout')
    blob = os.urandom(SIZE // 2)
    encoded = hashlib.sha256(blob).hexdigest()
    (root / 'blobs' / 'sha256').mkdir(parents=True)
    (root / 'blobs' / 'sha256' / encoded).write_bytes(blob)
    return root, 'sha256:' + encoded, blob


@pytest.fixture(scope='module')
def pair(media, layout, tmp_path_factory):
    """(fast, aiohttp-only): the same receiver twice, the second with ``--no-media-fast-path``; both log every request,
    each serves a copy of ``layout`` under /v2/ (open pull)."""
    from l3metal_lab.receiver import Receiver

    root, _data = media
    common = ['--media-dir', str(root), '--access-log']
    work = [tmp_path_factory.mktemp(name) for name in ('fast', 'slow')]
    for directory in work:
        shutil.copytree(layout[0], directory / 'layout')
    fast = Receiver(work[0], extra_args=common + ['--oci-layout', str(work[0] / 'layout')]).start()
    slow = Receiver(work[1], extra_args=common + ['--oci-layout', str(work[1] / 'layout'), '--no-media-fast-path']).start()
    yield fast, slow
    fast.stop()
    slow.stop()


def address(receiver):
    host, port = receiver.url.split('//')[1].split(':')
    return host, int(port)


def read_answers(sock, methods, buffer=b''):
    """The answers to requests made with ``methods`` (in order), each (status line, [(name, value)] but Date, body),
    then whether the connection was closed after them."""
    answers = []
    for method in methods:
        while b'\r\n\r\n' not in buffer:
            chunk = sock.recv(1 << 20)
            assert chunk, 'closed before the headers of answer %d: %r' % (len(answers) + 1, buffer[:200])
            buffer += chunk
        head, buffer = buffer.split(b'\r\n\r\n', 1)
        lines = head.decode('latin-1').split('\r\n')
        headers = [tuple(part.strip() for part in line.split(':', 1)) for line in lines[1:]]
        fields = {name.lower(): value for name, value in headers}
        status = int(lines[0].split()[1])
        length = 0 if method == 'HEAD' or status == 304 else int(fields.get('content-length', 0))
        while len(buffer) < length:
            chunk = sock.recv(1 << 20)
            assert chunk, 'closed %d bytes into a body of %d' % (len(buffer), length)
            buffer += chunk
        answers.append((lines[0], [pair for pair in headers if pair[0].lower() != 'date'], buffer[:length]))
        buffer = buffer[length:]
    sock.settimeout(0.3)
    try:
        closed = sock.recv(1) == b''
    except TimeoutError:
        closed = False
    return answers, closed


def exchange(receiver, pieces, methods, pause=0.05):
    """Send ``pieces`` (bytes, each its own send, ``pause`` apart so that each is its own segment) on one connection."""
    with socket.create_connection(address(receiver), timeout=30) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for number, piece in enumerate(pieces):
            if number:
                time.sleep(pause)  # shapes the packets; nothing waits for a state
            sock.sendall(piece)
        return read_answers(sock, methods)


def request(method, path, *headers, version='HTTP/1.1'):
    return ('%s %s %s\r\nHost: bmc.example\r\nUser-Agent: differential/1\r\n%s\r\n'
            % (method, path, version, ''.join(line + '\r\n' for line in headers))).encode('latin-1')


ACCESS_LINE = re.compile(r'l3metal_receiver\.access: (\S+) \[[^]]*\] (.*)$')


def access_lines(receiver, after):
    """The access-log lines of ``receiver`` after the first ``after`` ones, without the time."""
    lines = [ACCESS_LINE.search(line) for line in receiver.log_path.read_text(errors='replace').splitlines()]
    return [' '.join(match.groups()) for match in lines if match][after:]


def count_access(receiver):
    return len(access_lines(receiver, 0))


def same_answers(pair, pieces, methods):
    """Both receivers' answers and access-log lines for ``pieces``; asserts they are the same and returns them."""
    fast, slow = pair
    before = count_access(fast), count_access(slow)
    got_fast = exchange(fast, pieces, methods)
    got_slow = exchange(slow, pieces, methods)
    assert got_fast[1] == got_slow[1], 'one closed the connection, the other did not'
    assert len(got_fast[0]) == len(got_slow[0])
    for number, (one, other) in enumerate(zip(got_fast[0], got_slow[0], strict=True)):
        assert one[:2] == other[:2], 'answer %d: %r\n!= %r' % (number + 1, one[:2], other[:2])
        assert one[2] == other[2], 'answer %d: the bodies differ (%d and %d bytes)' % (number + 1, len(one[2]), len(other[2]))
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (count_access(fast) - before[0] < len(methods) or count_access(slow) - before[1] < len(methods)):
        time.sleep(0.02)
    assert access_lines(fast, before[0]) == access_lines(slow, before[1])
    return got_fast


def etag_of(pair, path='/media/maintenance.iso'):
    (status, headers, _body), = exchange(pair[1], [request('HEAD', path)], ['HEAD'])[0]
    assert status.startswith('HTTP/1.1 200')
    fields = {name.lower(): value for name, value in headers}
    return fields['etag'], fields['last-modified']


def test_pipelined_answers_are_aiohttps(pair, media):
    """Thirteen requests in one send: whole file, ranges, suffix, HEAD, the conditionals (304, 412, If-Range both
    ways), 416, several ranges (the whole file, as aiohttp's path answers), an empty file, a link, a subdirectory."""
    _root, data = media
    etag, modified = etag_of(pair)
    asks = [
        ('GET', '/media/maintenance.iso', ()),
        ('GET', '/media/maintenance.iso', ('Range: bytes=0-99',)),
        ('GET', '/media/maintenance.iso', ('range:   bytes=-7  ',)),
        ('HEAD', '/media/maintenance.iso', ('Range: bytes=100-199',)),
        ('GET', '/media/maintenance.iso', ('If-None-Match: %s' % etag,)),
        ('GET', '/media/maintenance.iso', ('If-Modified-Since: %s' % modified,)),
        ('GET', '/media/maintenance.iso', ('If-Match: "nope"',)),
        ('GET', '/media/maintenance.iso', ('Range: bytes=%d-' % SIZE,)),
        ('GET', '/media/maintenance.iso', ('Range: bytes=0-1,5-6',)),
        ('GET', '/media/maintenance.iso', ('Range: bytes=10-19', 'If-Range: "stale"')),
        ('GET', '/media/maintenance.iso', ('Range: bytes=10-19', 'If-Range: %s' % etag, 'Connection: keep-alive')),
        ('GET', '/media/empty.iso', ()),
        ('GET', '/media/current.iso', ('Range: bytes=1048576-2097151', 'Referer: http://bmc/')),
        ('GET', '/media/sub/small.img', ('Range: bytes=2-4',)),
    ]
    answers, closed = same_answers(pair, [b''.join(request(method, path, *headers) for method, path, headers in asks)], [a[0] for a in asks])
    assert not closed
    statuses = [int(status.split()[1]) for status, _headers, _body in answers]
    assert statuses == [200, 206, 206, 206, 304, 304, 412, 416, 200, 200, 206, 200, 206, 206]
    assert answers[0][2] == data and answers[1][2] == data[:100] and answers[2][2] == data[-7:] and answers[12][2] == data[1 << 20:2 << 20]


def test_a_request_split_across_packets(pair, media):
    _root, data = media
    whole = request('GET', '/media/maintenance.iso', 'Range: bytes=5-9')
    pieces = [whole[:9], whole[9:30], whole[30:-1], whole[-1:] + request('GET', '/media/sub/small.img')[:20],
              request('GET', '/media/sub/small.img')[20:]]
    answers, _closed = same_answers(pair, pieces, ['GET', 'GET'])
    assert answers[0][2] == data[5:10] and answers[1][2] == b'0123456789'


@pytest.mark.parametrize('other', [  # the last two are answered by aiohttp, which then closes: nothing is sent after them
    request('GET', '/healthz'),
    request('GET', '/media/jobs/j-1/key/task.iso'),           # per-job media: aiohttp's path and its checks, always
    request('GET', '/media/missing.iso'),                     # 404: aiohttp's problem document
    request('GET', '/media/.hidden.iso'),
    request('GET', '/media/sub/../maintenance.iso'),
    request('GET', '/media/sm%61ll.img'),
    request('GET', '/media/maintenance.iso?x=1', 'Range: bytes=0-3'),
    request('GET', '/media/maintenance.iso', 'Range: bytes=0-3', 'Range: bytes=4-5'),
    request('POST', '/media/maintenance.iso', 'Content-Length: 3') + b'abc',
    request('GET', '/media/maintenance.iso', 'Range: bytes=0-3', 'Content-Length: 0'),
    request('GET', '/media/maintenance.iso', 'Range: bytes=0-3', 'Transfer-Encoding: chunked') + b'0\r\n\r\n',
    request('GET', '/media/maintenance.iso', 'Range: bytes=0-3', 'Connection: Keep-Alive, Upgrade', 'Upgrade: h2c'),
    b'GET /media/maintenance.iso HTTP/1.1\r\nRange: bytes=0-3\r\n\r\n',
    request('GET', '/media/maintenance.iso', 'Range: bytes=0-3', version='HTTP/1.0'),
    request('GET', '/media/maintenance.iso', 'Range: bytes=0-3', 'Connection: close'),
], ids=['healthz', 'per-job', 'missing', 'hidden', 'dot-dot', 'percent', 'query', 'two-ranges', 'post-body', 'content-length', 'chunked',
        'upgrade', 'no-host', 'http10', 'close'])
def test_keep_alive_then_another_request_then_media_again(pair, media, other):
    """A media answer, then a request the fast path leaves to aiohttp, then media again, on one connection: what aiohttp
    answers, byte for byte, and the media after it too."""
    _root, data = media
    if other.startswith(b'GET /healthz'):
        fast, slow = pair
        methods = ['GET', 'GET', 'GET']
        pieces = [request('GET', '/media/maintenance.iso', 'Range: bytes=0-9') + other + request('GET', '/media/sub/small.img')]
        got = [exchange(server, pieces, methods) for server in (fast, slow)]
        assert [answer[0] for answer in got[0][0]] == [answer[0] for answer in got[1][0]]
        assert got[0][0][0][2] == data[:10] and got[0][0][2][2] == b'0123456789'
        return
    closes = b'HTTP/1.0' in other or b'close' in other or b'Host' not in other
    # after an Upgrade request aiohttp holds what follows until the connection's end: nothing follows it here
    follows = not closes and b'Upgrade' not in other
    methods = ['GET'] * (3 if follows else 2)
    # ``other`` in a packet of its own: when a request aiohttp refuses (no Host) arrives in the same read as a good one
    # before it, aiohttp's parser answers only the 400, the fast path answers both (docs/testing.md)
    after = request('GET', '/media/sub/small.img', 'Range: bytes=-3') if follows else b''
    pieces = [request('GET', '/media/maintenance.iso', 'Range: bytes=0-9'), other + after]
    answers, closed = same_answers(pair, pieces, methods)
    assert closed == closes
    assert answers[0][2] == data[:10]


def test_a_client_hanging_up_mid_body_costs_nothing(pair, media):
    """Hang up (RST) a megabyte into a 3 MiB answer sent by the fast path, while the next request waits behind it: the
    receiver goes on serving, and logs no traceback."""
    _root, data = media
    fast, _slow = pair
    for _attempt in range(3):
        with socket.create_connection(address(fast), timeout=30) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            sock.sendall(request('GET', '/media/maintenance.iso') * 2)
            got = 0
            while got < (1 << 20):
                got += len(sock.recv(65536))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b'\x01\x00\x00\x00\x00\x00\x00\x00')
    (status, _headers, body), = exchange(fast, [request('GET', '/media/maintenance.iso', 'Range: bytes=-5')], ['GET'])[0]
    assert status.startswith('HTTP/1.1 206') and body == data[-5:]
    assert 'Traceback' not in fast.log_path.read_text(errors='replace')


def test_blob_answers_are_aiohttps(pair, layout, media):
    """The registry's blob GETs and HEADs, pipelined with media requests on one connection: whole, ranges, HEAD, 304,
    416, the same blob under another repository name, a sha512 digest the layout does not hold, and last an unknown
    blob (the registry's JSON error, from aiohttp's path), each answer and access-log line as aiohttp's path gives."""
    _root, digest, blob = layout
    _media_root, data = media
    path = '/v2/os/ubuntu-rootfs/blobs/%s' % digest
    (status, headers, _body), = exchange(pair[1], [request('HEAD', path)], ['HEAD'])[0]
    assert status.startswith('HTTP/1.1 200')
    etag = dict((name.lower(), value) for name, value in headers)['etag']
    asks = [
        ('GET', path, ()),
        ('GET', path, ('Range: bytes=0-99',)),
        ('GET', '/media/maintenance.iso', ('Range: bytes=0-99',)),
        ('HEAD', path, ()),
        ('GET', path, ('If-None-Match: %s' % etag,)),
        ('GET', path, ('Range: bytes=%d-' % len(blob),)),
        ('GET', '/v2/library/other/blobs/%s' % digest, ('Range: bytes=-10',)),
        ('GET', path, ('Range: bytes=1048576-2097151',)),
        ('GET', '/v2/os/ubuntu-rootfs/blobs/sha512:' + '0' * 128, ()),
        ('GET', '/v2/os/ubuntu-rootfs/blobs/sha256:' + '0' * 64, ()),
    ]
    answers, closed = same_answers(pair, [b''.join(request(method, target, *extra) for method, target, extra in asks)], [a[0] for a in asks])
    assert not closed
    assert [int(status.split()[1]) for status, _headers, _body in answers] == [200, 206, 206, 200, 304, 416, 206, 206, 404, 404]
    assert answers[0][2] == blob and answers[1][2] == blob[:100] and answers[2][2] == data[:100] and answers[6][2] == blob[-10:]
    assert answers[7][2] == blob[1 << 20:2 << 20]
    fields = dict((name.lower(), value) for name, value in answers[0][1])
    assert fields['docker-content-digest'] == digest and fields['docker-distribution-api-version'] == 'registry/2.0'
    assert b'BLOB_UNKNOWN' in answers[9][2]


@pytest.mark.parametrize('other', [
    request('GET', '/v2/OS/blobs/sha256:' + '0' * 64),            # not a repository name: the registry's NAME_INVALID
    request('GET', '/v2/os/blobs/sha256:' + 'A' * 64),            # not the layout's hex: DIGEST_INVALID
    request('GET', '/v2/os/blobs/sha256:' + '0' * 63),
    request('PUT', '/v2/os/blobs/sha256:' + '0' * 64, 'Content-Length: 0'),
    request('GET', '/v2/os/manifests/latest'),
    request('GET', '/v2/'),
], ids=['name', 'hex-case', 'short', 'put', 'manifest', 'base'])
def test_other_registry_requests_go_to_aiohttp(pair, layout, other):
    """A blob answer, then a registry request the fast path leaves alone, then the blob again: aiohttp's answers."""
    _root, digest, blob = layout
    blob_ask = request('GET', '/v2/os/blobs/%s' % digest, 'Range: bytes=0-9')
    answers, closed = same_answers(pair, [blob_ask, other + blob_ask], ['GET', other.split(b' ', 1)[0].decode(), 'GET'])
    assert not closed
    assert answers[0][2] == answers[2][2] == blob[:10]
