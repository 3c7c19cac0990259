# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The floor of the receiver's stack for Range reads: a minimal asyncio server, for bench/receiver_media.py only.

NOT a media server: it serves one file at any path, answers only ``GET`` with one ``Range: bytes=a-b`` (its headers a
fixed status line, Content-Range and Content-Length), checks nothing, and sends the body as the receiver does
(``send(MSG_MORE)`` for the headers, then ``sendfile(2)``, waiting for writability when the socket is full).  What is
left is what any Python asyncio server pays per request: the event loop's wake-up, ``recv``, one regular expression
and the two sends.  The receiver's media fast path is compared with it (``ratio = ours / floor``) to tell its own cost
from the stack's.

    python bench/_media_floor.py PORT FILE
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import sys

RANGE = re.compile(rb'\r\nRange: *bytes=(\d+)-(\d+)', re.IGNORECASE)


class FloorProtocol(asyncio.Protocol):
    def __init__(self, fd: int, size: int) -> None:
        self.fd, self.size = fd, size
        self.buffer = b''
        self.sock: socket.socket | None = None
        self.transport: asyncio.Transport | None = None
        self.sending: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.sock = transport.get_extra_info('socket')._sock  # pylint: disable=protected-access
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.sending is None:
            self.answer()

    def answer(self) -> None:
        assert self.sock is not None
        while True:
            end = self.buffer.find(b'\r\n\r\n')
            if end < 0:
                return
            match = RANGE.search(self.buffer, 0, end)
            self.buffer = self.buffer[end + 4:]
            first, last = (int(match.group(1)), int(match.group(2))) if match else (0, self.size - 1)
            self.sock.send(b'HTTP/1.1 206 Partial Content\r\nContent-Range: bytes %d-%d/%d\r\nContent-Length: %d\r\n\r\n'
                           % (first, last, self.size, last - first + 1), socket.MSG_MORE)
            offset = self.send(first, last + 1)
            if offset <= last:
                self.sending = asyncio.get_running_loop().create_task(self.send_rest(offset, last + 1))
                return

    def send(self, offset: int, end: int) -> int:
        assert self.sock is not None
        while offset < end:
            try:
                offset += os.sendfile(self.sock.fileno(), self.fd, offset, end - offset)
            except BlockingIOError:
                break
        return offset

    async def send_rest(self, offset: int, end: int) -> None:
        assert self.sock is not None
        loop = asyncio.get_running_loop()
        while offset < end:
            ready = loop.create_future()
            loop.add_writer(self.sock.fileno(), ready.set_result, None)
            try:
                await ready
            finally:
                loop.remove_writer(self.sock.fileno())
            offset = self.send(offset, end)
        self.sending = None
        self.answer()


async def serve(port: int, path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    size = os.fstat(fd).st_size
    server = await asyncio.get_running_loop().create_server(lambda: FloorProtocol(fd, size), '127.0.0.1', port)
    async with server:
        await server.serve_forever()


if __name__ == '__main__':
    asyncio.run(serve(int(sys.argv[1]), sys.argv[2]))
