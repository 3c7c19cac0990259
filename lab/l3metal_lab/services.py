# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Real server processes for tests: start, wait until ready, stop, keep the log."""

from __future__ import annotations

import os
import signal
import ssl
import subprocess
import typing as t
import urllib.error
import urllib.request
from pathlib import Path

from .ports import port_is_open
from .waiting import Timeout, wait_for


class ServiceError(RuntimeError):
    """A service did not start; the message carries the end of its log."""


class Service:
    """A server process started by a test.

    ``ready`` is polled until it returns true: by default the TCP port accepts connections; pass
    ``ready_url`` to wait for an HTTP answer (any status below 500) instead.  The process's stdout and
    stderr go to ``log_path``; the tail of it is shown when the service fails to start or dies.
    """

    def __init__(self, name: str, argv: t.Sequence[str], log_path: Path, port: int | None = None,
                 ready_url: str | None = None, env: t.Mapping[str, str] | None = None, cwd: Path | None = None,
                 ready_timeout: float = 30.0, ca_file: str | None = None) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = Path(log_path)
        self.port = port
        self.ready_url = ready_url
        self.env = dict(os.environ if env is None else env)
        self.cwd = cwd
        self.ready_timeout = ready_timeout
        self.ca_file = ca_file
        self.process: subprocess.Popen[bytes] | None = None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return '\n'.join(self.log_path.read_text(errors='replace').splitlines()[-lines:])
        except OSError:
            return '(no log)'

    def _http_ready(self) -> bool:
        assert self.ready_url is not None
        context = ssl.create_default_context(cafile=self.ca_file) if self.ca_file else None
        try:
            with urllib.request.urlopen(self.ready_url, timeout=1, context=context) as response:
                return response.status < 500
        except urllib.error.HTTPError as exc:
            return exc.code < 500
        except (urllib.error.URLError, OSError):
            return False

    def _ready(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            code = None if self.process is None else self.process.returncode
            raise ServiceError('%s exited with code %s before it was ready; log:\n%s' % (self.name, code, self.log_tail()))
        if self.ready_url:
            return self._http_ready()
        if self.port is not None:
            return port_is_open(self.port)
        return True

    def start(self) -> Service:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, 'ab') as log:
            # A session of its own: stop() signals the whole process group (wrappers, workers).
            self.process = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                            cwd=self.cwd, start_new_session=True)
        try:
            wait_for(self._ready, timeout=self.ready_timeout, interval=0.05, what='%s ready' % self.name)
        except Timeout as exc:
            self.stop()
            raise ServiceError('%s: %s; log:\n%s' % (self.name, exc, self.log_tail())) from None
        except ServiceError:
            self.stop()
            raise
        return self

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=timeout)

    def __enter__(self) -> Service:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
