# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The media fast path of the connection layer: which requests it takes (every refusal rule with its negative
control), and that it is what answers them (aiohttp's media handler is never called) in a receiver run in-process.
Its answers against aiohttp's, byte for byte: tests/integration/receiver/test_media_fast_path.py."""

from __future__ import annotations

import asyncio
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from l3metal_lab.ports import free_port
from l3metal_receiver import api, server
from l3metal_receiver.connections import fast_media_request

GOOD = b'GET /media/maintenance.iso HTTP/1.1\r\nHost: bmc\r\nRange: bytes=0-9'


def test_a_simple_request_is_taken_with_its_headers():
    request = fast_media_request(GOOD + b'\r\nUser-Agent:  Virtual CD/1.0 \r\nIF-RANGE: "x"\r\nConnection: Keep-Alive')
    assert request is not None
    assert (request.method, request.target, request.tail, request.digest) == ('GET', '/media/maintenance.iso', 'maintenance.iso', '')
    # by lower-case name (what plan_answer reads), whatever case the client wrote
    assert request.headers == {'host': 'bmc', 'range': 'bytes=0-9', 'user-agent': 'Virtual CD/1.0', 'if-range': '"x"', 'connection': 'Keep-Alive'}
    assert fast_media_request(b'HEAD /media/sub/dir/disk-1_2~3.img HTTP/1.1\r\nHost:') is not None
    digest = 'sha256:' + '0123456789abcdef' * 4
    blob = fast_media_request(b'GET /v2/os-images/ubuntu__rootfs/blobs/%s HTTP/1.1\r\nHost: registry' % digest.encode())
    assert blob is not None and (blob.method, blob.target, blob.tail, blob.digest) == (
        'GET', '/v2/os-images/ubuntu__rootfs/blobs/' + digest, '', digest)


@pytest.mark.parametrize('head', [
    GOOD.replace(b'GET', b'POST'),
    GOOD.replace(b'GET', b'get'),
    GOOD.replace(b'HTTP/1.1', b'HTTP/1.0'),
    GOOD.replace(b'HTTP/1.1', b'HTTP/2.0'),
    GOOD.replace(b'/media/', b'/v2/'),
    GOOD.replace(b'/media/maintenance.iso', b'/v2/OS/blobs/sha256:' + b'0' * 64),       # not a repository name
    GOOD.replace(b'/media/maintenance.iso', b'/v2/os/blobs/sha256:' + b'0' * 63),       # not a sha256 digest
    GOOD.replace(b'/media/maintenance.iso', b'/v2/os/blobs/sha256:' + b'A' * 64),       # not the layout's lower-case hex
    GOOD.replace(b'/media/maintenance.iso', b'/v2/os/blobs/md5:' + b'0' * 32),
    GOOD.replace(b'/media/maintenance.iso', b'/v2/os/manifests/latest'),
    GOOD.replace(b'/media/maintenance.iso', b'/v2/os/blobs/uploads/'),
    GOOD.replace(b'/media/', b'/medias/'),
    GOOD.replace(b'maintenance.iso', b'maintenance.iso?x=1'),
    GOOD.replace(b'maintenance.iso', b'maintenance.iso#top'),
    GOOD.replace(b'maintenance.iso', b'maint%65nance.iso'),
    GOOD.replace(b'maintenance.iso', b'a//maintenance.iso'),
    GOOD.replace(b'maintenance.iso', b'maintenance.iso/'),
    GOOD.replace(b'maintenance.iso', b'./maintenance.iso'),
    GOOD.replace(b'maintenance.iso', b'a/../maintenance.iso'),
    GOOD.replace(b'maintenance.iso', b'.hidden'),
    GOOD.replace(b'maintenance.iso', 'maïntenance.iso'.encode()),
    GOOD.replace(b'GET ', b'GET  '),
    GOOD.replace(b'Host: bmc', b'X-Host: bmc'),                  # no Host: aiohttp's 400
    GOOD + b'\r\nHost: other',                                   # a header twice
    GOOD + b'\r\nrange: bytes=1-2',
    GOOD + b'\r\nContent-Length: 0',
    GOOD + b'\r\nTransfer-Encoding: chunked',
    GOOD + b'\r\nExpect: 100-continue',
    GOOD + b'\r\nUpgrade: h2c',
    GOOD + b'\r\nConnection: close',
    GOOD + b'\r\nConnection: keep-alive, Upgrade',
    GOOD + b'\r\nX-Folded: a\r\n b',                              # obs-fold
    GOOD + b'\r\nX-Space : a',
    GOOD + b'\r\nX-Bare-LF: a\nRange: bytes=0-0',
    GOOD + b'\r\nX-Control: a\x01b',
    GOOD + b'\r\nX-Latin: caf\xe9',
    GOOD + b'\r\nNo colon',
    GOOD + b'\r\n',
    GOOD + b''.join(b'\r\nX-%d: y' % number for number in range(100)),
], ids=lambda head: head[-40:].decode('latin-1'))
def test_anything_unusual_goes_to_aiohttp(head):
    assert fast_media_request(head) is None


def test_the_rule_with_its_limit_just_below():
    assert fast_media_request(GOOD + b''.join(b'\r\nX-%d: y' % number for number in range(98))) is not None


async def _exchange(port: int, data: bytes, answers: int) -> list[bytes]:
    reader, writer = await asyncio.open_connection('127.0.0.1', port)
    writer.write(data)
    out = []
    for _answer in range(answers):
        head = await asyncio.wait_for(reader.readuntil(b'\r\n\r\n'), 10)
        length = int(next(line.split(b':')[1] for line in head.split(b'\r\n') if line.lower().startswith(b'content-length:')))
        out.append(head.split(b'\r\n', 1)[0] + b' ' + await asyncio.wait_for(reader.readexactly(length), 10))
    writer.close()
    return out


@pytest.mark.parametrize('fast_path', [True, False], ids=['fast-path', 'no-media-fast-path'])
def test_the_fast_path_is_what_answers(tmp_path, monkeypatch, fast_path):
    """Pipelined media requests on one connection never reach aiohttp's media handler with the fast path, and all do
    without it (the negative control); a percent-encoded path reaches it in both cases."""
    (tmp_path / 'media').mkdir()
    data = os.urandom(100_000)
    (tmp_path / 'media' / 'disk.iso').write_bytes(data)
    calls: list[str] = []
    handler = api.public_media

    async def counting(request):
        calls.append(request.path)
        return await handler(request)

    monkeypatch.setattr(api, 'public_media', counting)
    settings = server.Settings(host='127.0.0.1', port=free_port(), data_dir=tmp_path / 'data', media_dir=tmp_path / 'media',
                               media_fast_path=fast_path)

    async def scenario(port) -> tuple[list[bytes], list[bytes]]:
        asks = b''.join(b'GET /media/disk.iso HTTP/1.1\r\nHost: x\r\nRange: bytes=%d-%d\r\n\r\n' % (n * 1000, n * 1000 + 999) for n in range(20))
        ranges = await _exchange(port, asks, 20)
        encoded = await _exchange(port, b'GET /media/d%69sk.iso HTTP/1.1\r\nHost: x\r\nRange: bytes=0-3\r\n\r\n', 1)
        return ranges, encoded

    ranges, encoded = _serve_settings(settings, scenario)
    assert ranges == [b'HTTP/1.1 206 Partial Content ' + data[n * 1000:n * 1000 + 1000] for n in range(20)]
    assert encoded == [b'HTTP/1.1 206 Partial Content ' + data[:4]]
    assert calls == ([] if fast_path else ['/media/disk.iso'] * 20) + ['/media/disk.iso']


def test_a_stop_lets_a_fast_answer_finish_then_closes(tmp_path):
    """SIGTERM while the fast path is still sending an answer (the client reads slowly): as for a request in aiohttp's
    path, the answer is completed (aiohttp's shutdown waits for ``_request_in_progress``), then the connection closes."""
    (tmp_path / 'media').mkdir()
    data = os.urandom(24 << 20)  # far more than the socket buffers hold
    (tmp_path / 'media' / 'big.iso').write_bytes(data)
    port = free_port()
    settings = server.Settings(host='127.0.0.1', port=port, data_dir=tmp_path / 'data', media_dir=tmp_path / 'media')

    async def scenario() -> tuple[bytes, bytes]:
        stop = asyncio.Event()
        serving = asyncio.create_task(server.serve(settings, stop))
        try:
            for _attempt in range(200):
                try:
                    reader, writer = await asyncio.open_connection('127.0.0.1', port)
                    break
                except OSError:
                    await asyncio.sleep(0.02)
            writer.write(b'GET /media/big.iso HTTP/1.1\r\nHost: x\r\n\r\n')
            head = await asyncio.wait_for(reader.readuntil(b'\r\n\r\n'), 10)
            body = await asyncio.wait_for(reader.readexactly(1 << 20), 10)
            stop.set()
            await asyncio.sleep(0.2)  # the receiver is stopping, the answer not yet sent
            body += await asyncio.wait_for(reader.readexactly(len(data) - len(body)), 20)
            tail = await asyncio.wait_for(reader.read(), 20)
            writer.close()
            return head, body + tail
        finally:
            stop.set()
            await serving

    head, body = asyncio.run(scenario())
    assert head.startswith(b'HTTP/1.1 200 OK\r\n')
    assert body == data  # all of it, and nothing after: the connection closed


async def _answer(reader: asyncio.StreamReader) -> tuple[bytes, dict[bytes, bytes], bytes]:
    head = await asyncio.wait_for(reader.readuntil(b'\r\n\r\n'), 10)
    lines = head[:-4].split(b'\r\n')
    fields = {name.strip().lower(): value.strip() for name, value in (line.split(b':', 1) for line in lines[1:])}
    body = await asyncio.wait_for(reader.readexactly(int(fields.get(b'content-length', b'0'))), 10)
    return lines[0], fields, body


def _held(path: str) -> int:
    """How many of this process's descriptors are open on the file ``path``."""
    count = 0
    for name in os.listdir('/proc/self/fd'):
        try:
            count += os.readlink('/proc/self/fd/' + name) == path
        except OSError:
            pass
    return count


def _serve(tmp_path, scenario):
    """Run ``scenario(port)`` against a receiver served in-process on ``tmp_path/media``; its result."""
    return _serve_settings(server.Settings(host='127.0.0.1', port=free_port(), data_dir=tmp_path / 'data', media_dir=tmp_path / 'media'),
                           scenario)


def _serve_settings(settings, scenario):
    """Run ``scenario(port)`` against a receiver served in-process with ``settings``; its result."""
    port = settings.port

    async def run():
        stop = asyncio.Event()
        serving = asyncio.create_task(server.serve(settings, stop))
        try:
            for _attempt in range(200):
                try:
                    (_reader, writer) = await asyncio.open_connection('127.0.0.1', port)
                    writer.close()
                    break
                except OSError:
                    await asyncio.sleep(0.02)
            return await scenario(port)
        finally:
            stop.set()
            await serving

    return asyncio.run(run())


def test_a_connection_keeps_its_file_only_while_the_path_names_it(tmp_path, monkeypatch):
    """A keep-alive connection reads the same medium again without opening and checking it again (one descriptor), and
    sees every change of what the path names: the file replaced by a rename (the new bytes), written in place (the new
    ETag), the link swapped to a hidden file (404, as a new connection would get); closing the connection closes the
    file."""
    from l3metal_receiver import media as media_module

    opened: list[str] = []
    open_regular_fd = media_module.open_regular_fd

    def counting(path, *args):
        opened.append(path)
        return open_regular_fd(path, *args)

    monkeypatch.setattr(media_module, 'open_regular_fd', counting)
    media = tmp_path / 'media'
    media.mkdir()
    first, second = os.urandom(4096), os.urandom(4096)
    disk = media / 'disk.iso'
    disk.write_bytes(first)
    (media / '.hidden.iso').write_bytes(b'secret' * 100)
    os.symlink('disk.iso', media / 'current.iso')
    ask = b'GET /media/current.iso HTTP/1.1\r\nHost: bmc\r\nRange: bytes=0-99\r\n\r\n'
    seen: list[tuple[bytes, bytes, bytes, int, int]] = []

    async def scenario(port):
        reader, writer = await asyncio.open_connection('127.0.0.1', port)

        async def step():
            writer.write(ask)
            status, fields, body = await _answer(reader)
            seen.append((status, fields.get(b'etag', b''), body, _held(str(disk)), len(opened)))

        await step()
        await step()
        (media / 'new.iso').write_bytes(second)
        os.replace(media / 'new.iso', disk)
        await step()
        with open(disk, 'r+b') as handle:  # the same inode, the same size, new bytes and times
            handle.write(first[:100])
        os.utime(disk, ns=(10 ** 18, 10 ** 18))
        await step()
        os.symlink('.hidden.iso', media / 'swap')
        os.replace(media / 'swap', media / 'current.iso')
        await step()
        writer.close()
        await writer.wait_closed()
        for _attempt in range(100):
            if not _held(str(disk)):
                break
            await asyncio.sleep(0.02)
        return _held(str(disk))

    after_close = _serve(tmp_path, scenario)
    assert [answer[0] for answer in seen] == [b'HTTP/1.1 206 Partial Content'] * 4 + [b'HTTP/1.1 404 Not Found']
    assert [answer[2] for answer in seen[:4]] == [first[:100], first[:100], second[:100], first[:100]]
    etags = [answer[1] for answer in seen[:4]]
    assert etags[0] == etags[1] and len({etags[1], etags[2], etags[3]}) == 3
    assert etags[3] == b'"%x-%x"' % (10 ** 18, 4096)
    # opened and checked: once for the first two answers, again after each change; the 404 by the fast path's check
    # and then by aiohttp's (the request is handed over)
    assert [answer[4] for answer in seen] == [1, 1, 2, 3, 5]
    assert [answer[3] for answer in seen] == [1, 1, 1, 1, 0]  # one descriptor held at a time, none after the 404
    assert after_close == 0


TCP_INFO_DATA_SEGS_IN = 152  # offset of tcpi_data_segs_in (u32) in Linux's struct tcp_info (4.6 and later)


def _data_segments_in(sock) -> int:
    import socket
    import struct

    return struct.unpack_from('I', sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 160), TCP_INFO_DATA_SEGS_IN)[0]


@pytest.mark.parametrize('more', [True, False], ids=['msg-more', 'without-msg-more'])
def test_the_headers_leave_in_the_bodys_first_segment(tmp_path, monkeypatch, more):
    """An answer with a small body arrives as one TCP segment (the headers sent with MSG_MORE, the body's sendfile(2)
    filling that segment), counted by the client's kernel (tcpi_data_segs_in); without MSG_MORE (the negative control)
    the headers are a segment of their own, under aiohttp's TCP_NODELAY."""
    from l3metal_receiver import media as media_module

    if not more:
        monkeypatch.setattr(media_module, '_MSG_MORE', 0)
    (tmp_path / 'media').mkdir()
    data = os.urandom(1000)
    (tmp_path / 'media' / 'disk.iso').write_bytes(data)

    async def scenario(port):
        reader, writer = await asyncio.open_connection('127.0.0.1', port)
        sock = writer.get_extra_info('socket')
        counts = []
        for number in range(3):
            before = _data_segments_in(sock)
            writer.write(b'GET /media/disk.iso HTTP/1.1\r\nHost: bmc\r\nRange: bytes=%d-%d\r\n\r\n' % (number * 100, number * 100 + 99))
            status, _fields, body = await _answer(reader)
            assert (status, body) == (b'HTTP/1.1 206 Partial Content', data[number * 100:number * 100 + 100])
            counts.append(_data_segments_in(sock) - before)
        writer.close()
        return counts

    assert _serve(tmp_path, scenario) == ([1, 1, 1] if more else [2, 2, 2])


@pytest.mark.parametrize('pull_auth', [False, True], ids=['open-pull', 'pull-auth'])
def test_blob_gets_are_answered_by_the_fast_path_when_pull_is_open(tmp_path, monkeypatch, pull_auth):
    """With open pull, the registry's blob GETs on one connection never reach its blob handler; with --oci-pull-auth
    (the negative control) every one does, with its credentials checked first (a request without them is 401)."""
    import hashlib

    from l3metal_receiver.registry.auth import basic_header
    from l3metal_receiver.registry.handlers import Registry

    (tmp_path / 'media').mkdir()
    blob = os.urandom(50_000)
    digest = 'sha256:' + hashlib.sha256(blob).hexdigest()
    (tmp_path / 'layout' / 'blobs' / 'sha256').mkdir(parents=True)
    (tmp_path / 'layout' / 'blobs' / 'sha256' / digest[7:]).write_bytes(blob)
    calls: list[str] = []
    handler = Registry._blob_get

    async def counting(self, request, name, digest):
        calls.append(name)
        return await handler(self, request, name, digest)

    monkeypatch.setattr(Registry, '_blob_get', counting)
    port = free_port()
    settings = server.Settings(host='127.0.0.1', port=port, data_dir=tmp_path / 'data', media_dir=tmp_path / 'media',
                               oci_layout=tmp_path / 'layout', oci_pull_auth=pull_auth, api_token='t' * 32)

    credentials = b'Authorization: %s\r\n' % basic_header('puller', 't' * 32).encode()

    async def scenario(port):
        asks = b''.join(b'GET /v2/os/image/blobs/%s HTTP/1.1\r\nHost: x\r\n%sRange: bytes=%d-%d\r\n\r\n'
                        % (digest.encode(), credentials if pull_auth else b'', n * 1000, n * 1000 + 999) for n in range(5))
        refused = await _exchange(port, b'GET /v2/os/image/blobs/%s HTTP/1.1\r\nHost: x\r\n\r\n' % digest.encode(), 1)
        return refused, await _exchange(port, asks, 5)

    refused, answers = _serve_settings(settings, scenario)
    assert answers == [b'HTTP/1.1 206 Partial Content ' + blob[n * 1000:n * 1000 + 1000] for n in range(5)]
    assert refused[0].startswith(b'HTTP/1.1 401 Unauthorized ' if pull_auth else b'HTTP/1.1 200 OK ')
    assert calls == (['os/image'] * 5 if pull_auth else [])


# ------------------------------------------------------------------ the parser against the rules, on random heads

_TOKEN_BYTES = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_LINE_BYTES = bytes(range(0x20, 0x7f)) + b'\t'


def _by_the_rules(head: bytes):
    """The fast path's rules, line by line (module docstring and the comments above ``fast_media_request``): what the
    parser, which checks a head with two regular expressions, must agree with."""
    from l3metal_receiver.connections import _FAST_REQUEST_LINE

    line_end = head.find(b'\r\n')
    if line_end < 0:
        return None
    match = _FAST_REQUEST_LINE.match(head[:line_end + 2].decode('latin-1'))
    if match is None or match.end() != line_end + 2 or '/.' in match[2]:
        return None
    lines = head[line_end + 2:].split(b'\r\n')
    if len(lines) > 100:
        return None
    headers = {}
    for line in lines:
        name, colon, value = line.partition(b':')
        if not colon or not name or name.translate(None, _TOKEN_BYTES) or value.translate(None, _LINE_BYTES):
            return None
        key = name.lower().decode('ascii')
        if key in headers:
            return None
        headers[key] = value.strip(b' \t').decode('ascii')
    if 'host' not in headers or {'content-length', 'transfer-encoding', 'expect', 'upgrade'} & set(headers):
        return None
    if headers.get('connection', 'keep-alive').lower() != 'keep-alive':
        return None
    return (match[1], match[2], match[3] or '', match[4] or '', headers)


_REQUEST_LINES = st.sampled_from([
    *[b'GET /media/maintenance.iso HTTP/1.1'] * 3, b'HEAD /media/a/b.img HTTP/1.1', b'GET /media/.x HTTP/1.1', b'GET /media/a/.b HTTP/1.1',
    b'GET /media/a b HTTP/1.1', b'GET /media/x HTTP/1.0', b'POST /media/x HTTP/1.1', b'GET /v2/os/blobs/sha256:' + b'0' * 64 + b' HTTP/1.1',
    b'GET /v2/os/blobs/sha256:' + b'0' * 63 + b' HTTP/1.1', b'GET /media/x HTTP/1.1\r', b'GET /media/x\nHTTP/1.1'])


def _mostly(good, odd):
    """``good`` nine times in ten, else ``odd`` (hypothesis's one_of favours neither: most heads would be refused)."""
    return st.tuples(st.integers(1, 10), good, odd).map(lambda drawn: drawn[2] if drawn[0] == 10 else drawn[1])


_GOOD_NAMES = st.sampled_from([b'Range', b'range', b'Accept', b'If-Range', b'User-Agent', b'X-A', b'Connection', b'host'])
_ODD_NAMES = st.one_of(st.sampled_from([b'Content-Length', b'Expect', b'Upgrade', b'Transfer-Encoding', b'', b'X Y', b'X:Y', b'X\tY']),
                       st.binary(min_size=0, max_size=6))
_NAMES = _mostly(_GOOD_NAMES, _ODD_NAMES)
_GOOD_VALUES = st.sampled_from([b'', b' ', b'bmc', b' bytes=0-9 ', b'\tkeep-alive\t', b'Keep-Alive', b'a  b   ', b'"x"', b'*/*'])
_ODD_VALUES = st.one_of(st.sampled_from([b'close', b'a\x01b', b'caf\xe9', b'a\rb', b'a\nb', b'\x7f']), st.binary(min_size=0, max_size=8))
_VALUES = _mostly(_GOOD_VALUES, _ODD_VALUES)
_SEPARATORS = st.sampled_from([b'\r\n'] * 20 + [b'\n', b'\r', b'\r\n '])
_HEADS = st.builds(lambda line, host, fields: line + host + b''.join(separator + name + colon + value for separator, name, colon, value in fields),
                   _REQUEST_LINES, st.sampled_from([b'\r\nHost: bmc'] * 4 + [b'\r\nhost:x', b'']),
                   st.lists(st.tuples(_SEPARATORS, _NAMES, st.sampled_from([b':'] * 20 + [b'', b' :']), _VALUES), max_size=4,
                            unique_by=lambda field: field[1].lower()))


def _as_tuple(request):
    return None if request is None else (request.method, request.target, request.tail, request.digest, request.headers)


@settings(max_examples=4000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(head=_HEADS)
def test_the_parser_agrees_with_the_rules_line_by_line(head):
    assert _as_tuple(fast_media_request(head)) == _by_the_rules(head)


def test_the_generated_heads_include_taken_ones():
    """The negative control of the test above: its heads are not all refused (a parser that refuses everything would
    agree with the rules on refusals only)."""
    taken = b'GET /media/maintenance.iso HTTP/1.1\r\nHost: bmc\r\nRange: bytes=0-9'
    assert _by_the_rules(taken) is not None and _as_tuple(fast_media_request(taken)) == _by_the_rules(taken)
    found = []

    @settings(max_examples=2000, deadline=None, database=None)
    @given(head=_HEADS)
    def collect(head):
        if _by_the_rules(head) is not None:
            found.append(head)

    collect()
    assert len(found) >= 100


# ------------------------------------------------------------------ one connection's requests: the last one remembered

_BASES = st.sampled_from([
    b'GET /media/maintenance.iso HTTP/1.1\r\nHost: bmc\r\nRange: %s',
    b'GET /media/maintenance.iso HTTP/1.1\r\nHost: bmc\r\nrange:%s\r\nUser-Agent: vcd',
    b'GET /media/maintenance.iso HTTP/1.1\r\nRange: %s\r\nHost: bmc\r\nRange: bytes=0-1',   # twice: refused
    b'HEAD /media/other.iso HTTP/1.1\r\nHost: bmc\r\nRANGE: %s',
    b'GET /media/maintenance.iso HTTP/1.1\r\nRange: %s',                                     # no Host: refused
    b'GET /v2/os/blobs/sha256:' + b'a' * 64 + b' HTTP/1.1\r\nHost: registry\r\nRange: %s\r\nConnection: keep-alive',
    b'GET /media/maintenance.iso HTTP/1.1\r\nHost: bmc\r\nX-Range: %s',
])
_RANGE_VALUES = st.one_of(st.builds(lambda first, length: b'bytes=%d-%d' % (first, first + length), st.integers(0, 2 ** 40), st.integers(0, 2 ** 20)),
                          st.sampled_from([b'', b' bytes=0-9 ', b'bytes=5-', b'bytes=-5', b'a\x01b', b'caf\xe9', b'x\ry', b'x\ny']),
                          st.binary(max_size=6))


@settings(max_examples=1500, deadline=None)
@given(heads=st.lists(st.builds(lambda base, value: base % value, _BASES, _RANGE_VALUES), min_size=1, max_size=12))
def test_a_connections_requests_are_parsed_as_each_alone(heads):
    from l3metal_receiver.connections import FastRequests

    requests = FastRequests()
    for head in heads:
        assert _as_tuple(requests.parse(head)) == _as_tuple(fast_media_request(head)), head


def test_the_next_range_of_the_same_request_is_not_parsed_again(monkeypatch):
    """The memory is used (the whole parse runs for the first head and for a head that differs elsewhere, not for a
    new Range value), and what it answers has the new value."""
    from l3metal_receiver import connections

    parsed = []
    parse = connections.fast_media_request

    def counting(head):
        parsed.append(head)
        return parse(head)

    monkeypatch.setattr(connections, 'fast_media_request', counting)
    requests = connections.FastRequests()
    base = b'GET /media/maintenance.iso HTTP/1.1\r\nHost: bmc\r\nRange: bytes=%d-%d\r\nUser-Agent: vcd'
    ranges = [requests.parse(base % (n, n + 9)).headers['range'] for n in range(5)]
    assert ranges == ['bytes=%d-%d' % (n, n + 9) for n in range(5)]
    assert len(parsed) == 1
    other = requests.parse(base.replace(b'vcd', b'vcd2') % (0, 9))
    assert other is not None and other.headers['user-agent'] == 'vcd2' and len(parsed) == 2
    assert requests.parse((base % (0, 9)).replace(b'bytes=0-9', b'bytes=0-9\x01')) is None and len(parsed) == 3
