# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""nginx (Debian nginx-light) serving a directory on 127.0.0.1: the reference for how a static file
server answers Range, HEAD and conditional requests, and the peer of the media benchmark."""

from __future__ import annotations

import os
import shutil
from typing import Self
from pathlib import Path

from .ports import free_port
from .services import Service

NGINX = shutil.which('nginx') or '/usr/sbin/nginx'

# What every nginx of the lab shares: foreground, files under its work directory, no access log.
_MAIN = '''daemon off;
worker_processes {workers};
pid {work}/nginx.pid;
error_log {work}/error.log warn;
{user}
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {work}/tmp; proxy_temp_path {work}/tmp; fastcgi_temp_path {work}/tmp;
    uwsgi_temp_path {work}/tmp; scgi_temp_path {work}/tmp;
{http}
}}
'''

_STATIC = '''    sendfile on;
    tcp_nopush on;
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}'''

_BALANCER = '''    upstream receivers {{
{servers}
    }}
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 64m;
        location / {{
            proxy_pass http://receivers;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            # long polls hold the answer up to 60 s
            proxy_read_timeout 90s;
            proxy_buffering off;
            # a receiver that refuses the connection (killed): the request goes to the next one (nginx never resends a
            # POST that reached a receiver: that one may have stored it)
            proxy_next_upstream error timeout;
            proxy_connect_timeout 2s;
        }}
    }}'''


class _NginxProcess:
    """``nginx -c <generated config> -p <work_dir>`` in the foreground on a free port of 127.0.0.1 until ``stop()``;
    subclasses give the ``http {}`` block's contents (``_http()``)."""

    workers: int | str = 1

    def __init__(self, work_dir: Path) -> None:
        self.work_dir = Path(work_dir).resolve()
        self.port = free_port()
        self.service: Service | None = None

    @property
    def url(self) -> str:
        return 'http://127.0.0.1:%d' % self.port

    def _http(self) -> str:
        raise NotImplementedError

    def start(self) -> Self:
        (self.work_dir / 'tmp').mkdir(parents=True, exist_ok=True)
        # as root, nginx workers would drop to "nobody", who cannot read a test's private temp dir
        user = 'user root;' if os.geteuid() == 0 else ''
        config = self.work_dir / 'nginx.conf'
        config.write_text(_MAIN.format(workers=self.workers, work=self.work_dir, user=user, http=self._http()))
        self.service = Service('nginx', [NGINX, '-c', str(config), '-p', str(self.work_dir)], self.work_dir / 'nginx.log', port=self.port)
        self.service.start()
        return self

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop()


class Nginx(_NginxProcess):
    """nginx serving the directory ``root`` (sendfile, as packaged nginx serves files).

    ``workers``: worker processes; 0 is the Debian package's ``auto`` (one per core).
    """

    def __init__(self, root: Path, work_dir: Path, workers: int = 1) -> None:
        super().__init__(work_dir)
        self.root = Path(root).resolve()
        self.workers = workers or 'auto'

    def _http(self) -> str:
        return _STATIC.format(port=self.port, root=self.root)


class NginxBalancer(_NginxProcess):
    """nginx as a round-robin HTTP load balancer in front of ``backends`` (``host:port`` each)."""

    def __init__(self, backends: list[str], work_dir: Path) -> None:
        super().__init__(work_dir)
        self.backends = list(backends)

    def _http(self) -> str:
        # max_fails/fail_timeout: a dead receiver is skipped for 2 s after one refused connection
        servers = '\n'.join('        server %s max_fails=1 fail_timeout=2s;' % backend for backend in self.backends)
        return _BALANCER.format(port=self.port, servers=servers)
