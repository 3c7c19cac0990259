# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The sushy-tools Redfish emulator (fake driver) as a test service.

Each instance gets a fresh state directory and ``TMPDIR`` (InsertMedia downloads the image there), binds
to 127.0.0.1 on a free port, and optionally requires basic auth (bcrypt htpasswd) and TLS (a CA made for
the test).  The fake driver delays power changes by ``random.randint(1, 11)`` seconds; ``power_delay``
replaces that with a fixed delay through a small wrapper (0 makes changes show on the next GET).

Every request the emulator served is in its log (werkzeug's access log); ``requests()`` parses it, so a
test can count what a module sent, independently of the module's own bookkeeping.  The log is read
incrementally: each call parses only the complete lines appended since the last one, so many pollers (the
SIMULATED nodes of a fleet poll it every 0.2 s each) cost O(new lines) per poll, not O(whole log).
"""

from __future__ import annotations

import os
import re
import socket
import sys
import threading
import typing as t
import uuid
from pathlib import Path

import bcrypt
import requests

from .ports import free_port
from .services import Service
from .tls import TlsFiles, make_tls_files

TWO_CDS: dict[str, dict[str, t.Any]] = {
    'Cd': {'Name': 'Virtual CD', 'MediaTypes': ['CD', 'DVD']},
    'Cd2': {'Name': 'Virtual CD 2', 'MediaTypes': ['CD', 'DVD']},
}
ONE_CD_AND_USB: dict[str, dict[str, t.Any]] = {
    'Cd': {'Name': 'Virtual CD', 'MediaTypes': ['CD', 'DVD']},
    'Usb': {'Name': 'Virtual Removable Disk', 'MediaTypes': ['USBStick']},
}

ANSI_COLOUR = re.compile(r'\x1b\[[0-9;]*m')
"""werkzeug colours non-2xx access lines, also when it writes to a file: strip these before parsing."""
ACCESS_LINE = re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[\d.]+" (?P<status>\d{3})')
"""One request in werkzeug's access log: ``"GET /redfish/v1/ HTTP/1.1" 200``."""

_WRAPPER = '''\
import os, sys, types
from sushy_tools.emulator.resources.systems import fakedriver
_delay = int(os.environ['L3M_SUSHY_POWER_DELAY'])
fakedriver.random = types.SimpleNamespace(randint=lambda a, b: _delay)
from sushy_tools.emulator import main
sys.exit(main.main())
'''


class AccessRecord(t.NamedTuple):
    method: str
    path: str
    status: int


def parse_access_log(text: str) -> list[AccessRecord]:
    """The requests in a piece of the emulator's log, in order (werkzeug access lines; colours and other lines ignored)."""
    return [AccessRecord(m['method'], m['path'], int(m['status'])) for m in ACCESS_LINE.finditer(ANSI_COLOUR.sub('', text))]


def fake_system(index: int, power_state: str = 'Off') -> dict[str, t.Any]:
    """A fake-driver system entry with a stable UUID derived from ``index``."""
    return {
        'uuid': str(uuid.UUID(int=0x11111111_1111_1111_1111_000000000000 + index)),
        'name': 'node-%02d' % index,
        'power_state': power_state,
        'nics': [{'mac': '52:54:00:00:%02x:%02x' % (index // 256, index % 256), 'ip': '127.0.0.1'}],
    }


def write_emulator_config(workdir: Path, config: dict[str, t.Any], auth: tuple[str, str] | None, tls: TlsFiles | None) -> Path:
    """Write ``workdir/emulator.conf`` (the emulator's config is Python) from ``config`` plus Basic auth and TLS.

    ``auth`` becomes an htpasswd file with a bcrypt hash (4 rounds: cheap to check per request), ``tls`` the server
    certificate and key.  Shared by the fake-driver emulator here and the libvirt one (``vmbmc.VmBmc``).
    """
    config = dict(config)
    if auth:
        digest = bcrypt.hashpw(auth[1].encode(), bcrypt.gensalt(rounds=4)).decode()
        htpasswd = workdir / 'htpasswd'
        htpasswd.write_text('%s:%s\n' % (auth[0], digest))
        config['SUSHY_EMULATOR_AUTH_FILE'] = str(htpasswd)
    if tls:
        config['SUSHY_EMULATOR_SSL_CERT'] = str(tls.server_cert)
        config['SUSHY_EMULATOR_SSL_KEY'] = str(tls.server_key)
    path = workdir / 'emulator.conf'
    path.write_text(''.join('%s = %r\n' % (key, value) for key, value in config.items()))
    return path


class SushyEmulator:
    """A running sushy-emulator; use ``start()``/``stop()`` or as a context manager."""

    def __init__(self, workdir: Path, systems: int | t.Sequence[dict[str, t.Any]] = 1, vmedia: t.Mapping[str, t.Any] | None = None,
                 auth: tuple[str, str] | None = ('admin', 'secret'), tls: bool = False, power_delay: int | None = 0) -> None:
        self.workdir = Path(workdir)
        self.systems = [fake_system(i + 1) for i in range(systems)] if isinstance(systems, int) else list(systems)
        self.vmedia = dict(vmedia if vmedia is not None else TWO_CDS)
        self.auth = auth
        self.port = free_port()
        self.tls: TlsFiles | None = make_tls_files(self.workdir / 'tls') if tls else None
        self.power_delay = power_delay
        self.service: Service | None = None
        self._log_lock = threading.Lock()  # the SIMULATED nodes' threads and the harness read the log together
        self._log_offset = 0  # bytes of emulator.log parsed into _records so far (complete lines only)
        self._records: list[AccessRecord] = []

    # -- addresses ------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return '%s://127.0.0.1:%d' % ('https' if self.tls else 'http', self.port)

    @property
    def ca_path(self) -> str | None:
        return str(self.tls.ca_cert) if self.tls else None

    @property
    def system_ids(self) -> list[str]:
        return [s['uuid'] for s in self.systems]

    def system_path(self, index: int = 0) -> str:
        return '/redfish/v1/Systems/%s' % self.system_ids[index]

    def module_defaults(self, **extra: t.Any) -> dict[str, t.Any]:
        """Connection options for ``module_defaults: {group/l3metal.provision.redfish: ...}``."""
        options: dict[str, t.Any] = {'baseuri': self.url, 'timeout': 10, 'retries': 1}
        if self.auth:
            options.update(username=self.auth[0], password=self.auth[1])
        if self.tls:
            options['ca_path'] = self.ca_path
        options.update(extra)
        return options

    # -- lifecycle ------------------------------------------------------------------------------

    def _write_config(self) -> Path:
        config: dict[str, t.Any] = {
            'SUSHY_EMULATOR_LISTEN_IP': '127.0.0.1',
            'SUSHY_EMULATOR_LISTEN_PORT': self.port,
            'SUSHY_EMULATOR_FAKE_DRIVER': True,
            'SUSHY_EMULATOR_STATE_DIR': str(self.workdir / 'state'),
            'SUSHY_EMULATOR_FAKE_SYSTEMS': self.systems,
            'SUSHY_EMULATOR_VMEDIA_DEVICES': self.vmedia,
        }
        return write_emulator_config(self.workdir, config, self.auth, self.tls)

    def start(self) -> SushyEmulator:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / 'tmp').mkdir(exist_ok=True)
        config = self._write_config()
        env = {'TMPDIR': str(self.workdir / 'tmp'), 'PATH': '/usr/bin:/bin', 'PYTHONUNBUFFERED': '1'}
        if self.power_delay is None:
            argv = [str(Path(sys.executable).with_name('sushy-emulator')), '--config', str(config)]
        else:
            wrapper = self.workdir / 'fast_sushy.py'
            wrapper.write_text(_WRAPPER)
            env['L3M_SUSHY_POWER_DELAY'] = str(int(self.power_delay))
            argv = [sys.executable, str(wrapper), '--config', str(config)]
        self.service = Service('sushy-emulator', argv, self.workdir / 'emulator.log', port=self.port, ready_url=self.url + '/redfish/v1/',
                               env=env, ca_file=self.ca_path, ready_timeout=30).start()
        return self

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop()

    def __enter__(self) -> SushyEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- observing ------------------------------------------------------------------------------

    @property
    def log_path(self) -> Path:
        return self.workdir / 'emulator.log'

    def _read_log(self) -> None:
        """Parse what was appended to the log since the last call; a line still being written waits for the next one.

        The service opens its log for appending (``Service.start``), so what was parsed stays valid; a log that got
        shorter (removed by hand) is read again from its start."""
        try:
            with open(self.log_path, 'rb') as handle:
                if handle.seek(0, os.SEEK_END) < self._log_offset:
                    self._log_offset = 0
                    self._records.clear()
                handle.seek(self._log_offset)
                chunk = handle.read()
        except FileNotFoundError:
            return
        complete = chunk.rfind(b'\n') + 1
        self._log_offset += complete
        self._records.extend(parse_access_log(chunk[:complete].decode('utf-8', 'replace')))

    def requests(self) -> list[AccessRecord]:
        """Every request served so far, in order (parsed from the access log)."""
        return self.requests_since(0)

    def mark(self) -> int:
        """A position in the access log; ``requests_since(mark)`` returns what came after it."""
        with self._log_lock:
            self._read_log()
            return len(self._records)

    def requests_since(self, mark: int) -> list[AccessRecord]:
        """The requests served after ``mark`` (a ``mark()`` or a count of records already seen), in order."""
        with self._log_lock:
            self._read_log()
            return self._records[mark:]

    def get(self, path: str) -> dict[str, t.Any]:
        """Read a resource directly (not through the code under test), for assertions."""
        response = requests.get(self.url + path, auth=self.auth, verify=self.ca_path or True, timeout=10)
        response.raise_for_status()
        return response.json()

    def slot(self, slot_id: str, system: int = 0) -> dict[str, t.Any]:
        return self.get('%s/VirtualMedia/%s' % (self.system_path(system), slot_id))

    def system(self, index: int = 0) -> dict[str, t.Any]:
        return self.get(self.system_path(index))


class SilentListener:
    """A TCP port that accepts connections and never answers: a BMC that hangs."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self._held: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _addr = self.sock.accept()
            except OSError:
                continue
            self._held.append(conn)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        for conn in self._held:
            conn.close()
        self.sock.close()
