# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The lab's one network shortcut: the BMC reaches the receiver at the address the VMs use.

The lab's VMs use QEMU's user-mode network, in which the host's 127.0.0.1 is ``10.0.2.2`` (``GUEST_HOST``): the
job's public URL (its callback and its media URL) is ``http://10.0.2.2:<receiver port>``, as servers reach it.  A
real BMC downloads the task medium from that same URL; on this host the address does not exist, so the emulated
BMC is given ``http_proxy`` pointing at ``GuestAddressProxy``, which sends requests for 10.0.2.2 to 127.0.0.1
(the same port) and refuses every other destination.  A SIMULATION of the network between BMC and receiver, not
of anything the collection does: the playbooks see the same URLs as in a data center where BMCs and servers
reach the receiver at one address.
"""

from __future__ import annotations

import http.client
import http.server
import shutil
import threading
import typing as t
import urllib.parse

from .ports import free_port

GUEST_HOST = '10.0.2.2'
_HOP_BY_HOP = {'connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade'}


class GuestAddressProxy:
    """An HTTP proxy on 127.0.0.1 that serves ``http://10.0.2.2:<port>/...`` from ``127.0.0.1:<port>`` (GET, HEAD)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.requests: list[str] = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'

            def log_message(self, format: str, *args: t.Any) -> None:  # pylint: disable=redefined-builtin
                return

            def _forward(self, body: bool) -> None:
                url = urllib.parse.urlsplit(self.path)
                if url.scheme != 'http' or url.hostname != GUEST_HOST or not url.port:
                    self.send_error(403, 'the lab proxy only forwards http://%s:<port>/ to 127.0.0.1' % GUEST_HOST)
                    return
                proxy.requests.append('%s %s' % (self.command, self.path))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                headers['Host'] = '%s:%d' % (GUEST_HOST, url.port)
                upstream = http.client.HTTPConnection('127.0.0.1', url.port, timeout=60)
                try:
                    upstream.request(self.command, urllib.parse.urlunsplit(('', '', url.path or '/', url.query, '')), headers=headers)
                    answer = upstream.getresponse()
                    self.send_response(answer.status, answer.reason)
                    for key, value in answer.getheaders():
                        if key.lower() not in _HOP_BY_HOP:
                            self.send_header(key, value)
                    self.send_header('Connection', 'close')
                    self.end_headers()
                    if body:
                        shutil.copyfileobj(answer, self.wfile, 1 << 20)
                except OSError as exc:
                    self.send_error(502, 'lab proxy: 127.0.0.1:%d: %s' % (url.port, exc))
                finally:
                    upstream.close()
                    self.close_connection = True

            def do_GET(self) -> None:
                self._forward(True)

            def do_HEAD(self) -> None:
                self._forward(False)

        self._httpd = http.server.ThreadingHTTPServer(('127.0.0.1', self.port), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True, name='guest-address-proxy')

    @property
    def url(self) -> str:
        return 'http://127.0.0.1:%d' % self.port

    def client_env(self) -> dict[str, str]:
        """Environment for a process (the BMC) that should reach 10.0.2.2 through this proxy and everything else directly."""
        return {'http_proxy': self.url, 'HTTP_PROXY': self.url, 'no_proxy': '127.0.0.1,localhost', 'NO_PROXY': '127.0.0.1,localhost'}

    def start(self) -> GuestAddressProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
