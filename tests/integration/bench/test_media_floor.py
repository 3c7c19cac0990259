# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""bench/_media_floor.py, the floor servers of the media bench, started as the bench starts them: they answer a Range
with the file's bytes, also when the body does not fit in the socket (the wait for writability), and go on with the
next request on the same connection.

The uvloop stack is not run here: uvloop is not a dependency (the bench asks for it when ``--floor-stacks`` names it).
"""

from __future__ import annotations

import os
import re
import socket
import sys
import time
import typing as t
from pathlib import Path

import pytest

from l3metal_lab.ports import free_port
from l3metal_lab.services import Service

FLOOR = Path(__file__).resolve().parents[3] / 'bench' / '_media_floor.py'


@pytest.fixture(name='media_file', scope='module')
def fixture_media_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp('floor') / 'big.iso'
    path.write_bytes(os.urandom(12 << 20))
    return path


@pytest.fixture(name='floor', params=['asyncio', 'threads'])
def fixture_floor(request: pytest.FixtureRequest, media_file: Path, tmp_path: Path) -> t.Iterator[int]:
    port = free_port()
    service = Service('floor-' + request.param, [sys.executable, str(FLOOR), str(port), str(media_file), '--stack', request.param],
                      tmp_path / 'floor.log', port=port)
    service.start()
    try:
        yield port
    finally:
        log = service.log_tail()
        service.stop()
    assert 'Traceback' not in log, log  # a failed send shows here (asyncio logs a task's exception and goes on)


def read_answer(sock: socket.socket, buffered: bytearray) -> tuple[bytes, bytes]:
    """One answer's header block and body from ``sock`` (``buffered``: what was read past the previous answer)."""
    while b'\r\n\r\n' not in buffered:
        chunk = sock.recv(1 << 16)
        assert chunk, 'the connection closed before the headers'
        buffered += chunk
    end = buffered.index(b'\r\n\r\n')
    head = bytes(buffered[:end])
    length = int(re.search(rb'\r\nContent-Length: (\d+)', head).group(1))  # type: ignore[union-attr]
    del buffered[:end + 4]
    while len(buffered) < length:
        chunk = sock.recv(1 << 20)
        assert chunk, 'the connection closed %d bytes short of the body' % (length - len(buffered))
        buffered += chunk
    body = bytes(buffered[:length])
    del buffered[:length]
    return head, body


def test_ranges_larger_than_the_socket_then_the_next_request(floor: int, media_file: Path) -> None:
    """A 10 MiB range to a client that reads nothing for a while and has a small receive buffer: the floor's socket
    fills, it waits for writability and sends the rest (the asyncio floor once used the loop's public ``add_writer``,
    which refuses a transport's descriptor: the body stopped there and the connection hung); then a 1 MiB range on the
    same connection."""
    data = media_file.read_bytes()
    with socket.create_connection(('127.0.0.1', floor), timeout=20) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
        buffered = bytearray()
        sock.sendall(b'GET /big.iso HTTP/1.1\r\nHost: x\r\nRange: bytes=4096-10489855\r\n\r\n')
        time.sleep(0.5)  # the client reads nothing: the server's sendfile(2) meets a full socket
        head, body = read_answer(sock, buffered)
        assert head.startswith(b'HTTP/1.1 206 ')
        assert b'Content-Range: bytes 4096-10489855/%d' % len(data) in head
        assert body == data[4096:10489856]
        sock.sendall(b'GET /any/path HTTP/1.1\r\nHost: x\r\nRange: bytes=1048576-2097151\r\n\r\n')
        head, body = read_answer(sock, buffered)
        assert b'Content-Length: 1048576' in head
        assert body == data[1 << 20:2 << 20]


def test_a_client_gone_mid_body_leaves_the_next_connections_served(floor: int) -> None:
    """Clients that close while the floor waits to send the rest of a body: later connections (given the same
    descriptor numbers) are answered.  (The asyncio floor once left the wait and its writer behind for the closed
    descriptor, and the next connection with that number was never read: 0 MiB/s in the bench's next pattern.)"""
    for _client in range(4):
        with socket.create_connection(('127.0.0.1', floor), timeout=20) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
            sock.sendall(b'GET /big.iso HTTP/1.1\r\nHost: x\r\nRange: bytes=0-10485759\r\n\r\n')
            sock.recv(1 << 16)
            time.sleep(0.3)  # the floor is waiting for writability when the connection goes
        time.sleep(0.2)
        with socket.create_connection(('127.0.0.1', floor), timeout=10) as sock:
            sock.sendall(b'GET /big.iso HTTP/1.1\r\nHost: x\r\nRange: bytes=0-4095\r\n\r\n')
            head, body = read_answer(sock, bytearray())
            assert head.startswith(b'HTTP/1.1 206 ') and len(body) == 4096
