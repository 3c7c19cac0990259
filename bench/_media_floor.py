# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The floor of the receiver's stack for Range reads: minimal servers, for bench/receiver_media.py only.

NOT a media server: it serves one file at any path, answers only ``GET`` with one ``Range: bytes=a-b`` (its headers a
fixed status line, Content-Range and Content-Length), checks nothing, and sends the body as the receiver does
(``send(MSG_MORE)`` for the headers, then ``sendfile(2)``, on a socket with the receiver's ``TCP_NOTSENT_LOWAT``).
What is left is what a Python server pays per request.
The receiver's media fast path is compared with it (``ratio = ours / floor``) to tell its own cost from the stack's.

``--stack`` picks how the floor waits, to tell whether another way of serving from Python would raise the floor:

- ``asyncio`` (the default, the receiver's stack): an ``asyncio.Protocol``; the event loop's wake-up, ``recv``, one
  regular expression and the two sends; when the socket is full, a wait for writability on the selector;
- ``threads``: no event loop, a thread per connection on a blocking socket (``recv``, then ``sendfile(2)`` until the
  whole body is sent, the GIL released while the kernel works);
- ``uvloop``: the ``asyncio`` floor on uvloop's event loop (libuv; ``pip install uvloop``, not a dependency).

    python bench/_media_floor.py PORT FILE [--stack asyncio|threads|uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import socket
import sys
import threading
import typing as t

from l3metal_receiver.connections import DEFAULT_NOTSENT_LOWAT

RANGE = re.compile(rb'\r\nRange: *bytes=(\d+)-(\d+)', re.IGNORECASE)


class FloorProtocol(asyncio.Protocol):
    def __init__(self, fd: int, size: int) -> None:
        self.fd, self.size = fd, size
        self.buffer = b''
        self.sock: socket.socket | None = None
        self.transport: asyncio.Transport | None = None
        self.sending: asyncio.Task[None] | None = None
        self.dup = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        # asyncio's TransportSocket wraps the socket; uvloop's pseudo-socket has none to give: a second one on a dup
        # of its descriptor (the same connection) sends
        wrapped = transport.get_extra_info('socket')
        self.dup = not isinstance(getattr(wrapped, '_sock', None), socket.socket)
        self.sock = socket.socket(fileno=os.dup(wrapped.fileno())) if self.dup else wrapped._sock  # pylint: disable=protected-access
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NOTSENT_LOWAT, DEFAULT_NOTSENT_LOWAT)

    def connection_lost(self, exc: Exception | None) -> None:
        # a send waiting for writability ends with the connection (its finally removes the writer): a writer left
        # registered for a closed descriptor makes the next connection given that number unreadable (the selector's
        # modify() fails with ENOENT) and it hangs
        if self.sending is not None:
            self.sending.cancel()
        if self.dup and self.sock is not None:
            self.sock.close()

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
        loop = t.cast(t.Any, asyncio.get_running_loop())
        out = self.sock.fileno()  # not asked again in the finally: a closed socket's is -1, and the writer would stay
        while offset < end:
            ready = loop.create_future()
            # the selector loop's private calls, as the receiver's send_rest: its public add_writer refuses a descriptor
            # a transport uses (RuntimeError), which left the rest of the body unsent and the connection stalled;
            # uvloop has only the public ones, and allows it
            getattr(loop, '_add_writer', loop.add_writer)(out, _wake, ready)
            try:
                await ready
            finally:
                getattr(loop, '_remove_writer', loop.remove_writer)(out)
            offset = self.send(offset, end)
        self.sending = None
        self.answer()


def _wake(ready: asyncio.Future[None]) -> None:
    if not ready.done():
        ready.set_result(None)


async def serve(port: int, path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    size = os.fstat(fd).st_size
    server = await asyncio.get_running_loop().create_server(lambda: FloorProtocol(fd, size), '127.0.0.1', port)
    async with server:
        await server.serve_forever()


def serve_connection(conn: socket.socket, fd: int, size: int) -> None:
    """The ``threads`` floor: one connection, blocking, until the client closes it."""
    out = conn.fileno()
    buffer = b''
    with conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NOTSENT_LOWAT, DEFAULT_NOTSENT_LOWAT)
        try:
            while True:
                end = buffer.find(b'\r\n\r\n')
                if end < 0:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                    continue
                match = RANGE.search(buffer, 0, end)
                buffer = buffer[end + 4:]
                first, last = (int(match.group(1)), int(match.group(2))) if match else (0, size - 1)
                conn.send(b'HTTP/1.1 206 Partial Content\r\nContent-Range: bytes %d-%d/%d\r\nContent-Length: %d\r\n\r\n'
                          % (first, last, size, last - first + 1), socket.MSG_MORE)
                offset = first
                while offset <= last:
                    offset += os.sendfile(out, fd, offset, last + 1 - offset)
        except OSError:  # the client went away (wrk closes its connections mid-answer at the end of a run)
            return


def serve_threads(port: int, path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    size = os.fstat(fd).st_size
    with socket.create_server(('127.0.0.1', port), backlog=512) as listener:
        while True:
            conn, _peer = listener.accept()
            threading.Thread(target=serve_connection, args=(conn, fd, size), daemon=True).start()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('port', type=int)
    parser.add_argument('file')
    parser.add_argument('--stack', choices=('asyncio', 'threads', 'uvloop'), default='asyncio')
    args = parser.parse_args(argv)
    if args.stack == 'threads':
        serve_threads(args.port, args.file)
    elif args.stack == 'uvloop':
        import uvloop  # pylint: disable=import-outside-toplevel,import-error

        uvloop.run(serve(args.port, args.file))
    else:
        asyncio.run(serve(args.port, args.file))


if __name__ == '__main__':
    main(sys.argv[1:])
