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

from l3metal_lab.ports import free_port
from l3metal_receiver import api, server
from l3metal_receiver.connections import fast_media_request

GOOD = b'GET /media/maintenance.iso HTTP/1.1\r\nHost: bmc\r\nRange: bytes=0-9'


def test_a_simple_request_is_taken_with_its_headers():
    request = fast_media_request(GOOD + b'\r\nUser-Agent:  Virtual CD/1.0 \r\nIF-RANGE: "x"\r\nConnection: Keep-Alive')
    assert request is not None
    assert (request.method, request.target, request.tail) == ('GET', '/media/maintenance.iso', 'maintenance.iso')
    assert request.headers.get('Range') == 'bytes=0-9' and request.headers.get('if-range') == '"x"'
    assert request.headers.get('User-Agent') == 'Virtual CD/1.0'  # surrounding whitespace is not part of a value
    assert fast_media_request(b'HEAD /media/sub/dir/disk-1_2~3.img HTTP/1.1\r\nHost:') is not None


@pytest.mark.parametrize('head', [
    GOOD.replace(b'GET', b'POST'),
    GOOD.replace(b'GET', b'get'),
    GOOD.replace(b'HTTP/1.1', b'HTTP/1.0'),
    GOOD.replace(b'HTTP/1.1', b'HTTP/2.0'),
    GOOD.replace(b'/media/', b'/v2/'),
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
    port = free_port()
    settings = server.Settings(host='127.0.0.1', port=port, data_dir=tmp_path / 'data', media_dir=tmp_path / 'media', media_fast_path=fast_path)

    async def scenario() -> tuple[list[bytes], list[bytes]]:
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
            asks = b''.join(b'GET /media/disk.iso HTTP/1.1\r\nHost: x\r\nRange: bytes=%d-%d\r\n\r\n' % (n * 1000, n * 1000 + 999) for n in range(20))
            ranges = await _exchange(port, asks, 20)
            encoded = await _exchange(port, b'GET /media/d%69sk.iso HTTP/1.1\r\nHost: x\r\nRange: bytes=0-3\r\n\r\n', 1)
            return ranges, encoded
        finally:
            stop.set()
            await serving

    ranges, encoded = asyncio.run(scenario())
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
