# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What only the real process shows (issue 15): start-up on bad storage, a disk that fills while it runs, kill -9,
timeouts, the connection and open-file limits, and what each of them leaves in the log.

Full and read-only file systems are real: a tmpfs with ``size=`` filled with a file, a read-only bind
mount (root only; skipped otherwise).  Open files are limited with a real RLIMIT_NOFILE.

Stores: the start-up and full-disk tests are about the SQLite file in the data directory and run on SQLite; their
PostgreSQL counterpart is the server ending the receiver's sessions while it runs (section 6, PostgreSQL only; a server
that refuses writes is in tests/unit/receiver/test_hostile.py on both stores).  Timeouts, the connection limit, the
open-file limit and malformed requests are the HTTP layer, the same code on either store: they run once, on SQLite.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import resource
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import typing as t
from pathlib import Path

import pytest

from l3metal_contract import webhook as _webhook
from l3metal_lab.receiver import Receiver, unique_serial
from l3metal_lab.waiting import wait_for

ROOT = os.geteuid() == 0


def _mount(*argv: str) -> None:
    subprocess.run(['mount', *argv], check=True, capture_output=True)


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> t.Iterator[Path]:
    """A tmpfs of ``size`` at ``path`` (a full disk is one file away)."""
    path.mkdir(parents=True, exist_ok=True)
    _mount('-t', 'tmpfs', '-o', 'size=%s,mode=0700' % size, 'tmpfs', str(path))
    try:
        yield path
    finally:
        subprocess.run(['umount', '-l', str(path)], check=False, capture_output=True)


@contextlib.contextmanager
def read_only(path: Path) -> t.Iterator[Path]:
    """``path`` bind-mounted onto itself read-only (EROFS, even for root)."""
    _mount('--bind', str(path), str(path))
    try:
        _mount('-o', 'remount,bind,ro', str(path))
        yield path
    finally:
        subprocess.run(['umount', '-l', str(path)], check=False, capture_output=True)


def fill(directory: Path, leave: int = 0) -> Path:
    """Fill the file system of ``directory`` until ``leave`` bytes are free (0: until ENOSPC)."""
    filler = directory / 'filler'
    with open(filler, 'wb') as handle:
        chunk = b'\0' * 65536
        try:
            while True:
                free = os.statvfs(directory).f_bavail * os.statvfs(directory).f_frsize
                if leave and free <= leave + len(chunk):
                    handle.write(b'\0' * max(0, free - leave))
                    handle.flush()
                    break
                handle.write(chunk)
                handle.flush()
        except OSError:
            pass
    return filler


def run_receiver(receiver: Receiver, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """The receiver process in the foreground, expected to stop by itself (a start-up failure)."""
    return subprocess.run(receiver.argv(), capture_output=True, text=True, timeout=timeout, check=False,
                          env=dict(os.environ, PYTHONDONTWRITEBYTECODE='1'))


def one_line_failure(proc: subprocess.CompletedProcess[str], *words: str) -> str:
    """Exit status 1 and exactly one line of output, naming every one of ``words`` (a path and a cause)."""
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert proc.returncode == 1, (proc.returncode, lines)
    assert len(lines) == 1 and 'Traceback' not in lines[0], lines
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def log_lines(receiver: Receiver) -> list[str]:
    return receiver.log_path.read_text(errors='replace').splitlines() if receiver.log_path.exists() else []


# ------------------------------------------------------------------------------------------------
# 6. start-up: one line naming the path and the cause, exit 1

needs_root = pytest.mark.skipif(not ROOT, reason='mounting a tmpfs or a read-only bind mount needs root')


@needs_root
def test_a_read_only_data_directory_with_a_database_is_one_line(tmp_path):
    receiver = Receiver(tmp_path / 'r')
    receiver.start()
    receiver.create_job('XF-RO')
    receiver.stop()
    with read_only(receiver.data_dir):
        line = one_line_failure(run_receiver(receiver), str(receiver.data_dir), 'read-only file system')
    assert 'disk I/O error' not in line


@needs_root
def test_a_full_disk_at_start_is_one_line(tmp_path):
    receiver = Receiver(tmp_path / 'r')
    with tmpfs(receiver.data_dir, '1m'):
        fill(receiver.data_dir)
        one_line_failure(run_receiver(receiver), str(receiver.data_dir), 'no space left on device')


@pytest.mark.parametrize('make, words', [
    (lambda r: (r.data_dir.parent.mkdir(parents=True, exist_ok=True), r.data_dir.write_text('a file')), ['data directory', 'not a directory']),
    (lambda r: (r.data_dir.mkdir(parents=True), r.database.write_bytes(b'this is not sqlite' * 100)), ['receiver.sqlite3', 'not an SQLite database']),
    (lambda r: (r.media_dir.rmdir(), r.media_dir.write_text('a file')), ['media', 'per-job media']),
], ids=['data-dir-is-a-file', 'database-is-garbage', 'media-dir-is-a-file'])
def test_bad_storage_at_start_is_one_line(tmp_path, make, words):
    receiver = Receiver(tmp_path / 'r')
    make(receiver)
    one_line_failure(run_receiver(receiver), *words)


def test_a_port_in_use_is_one_line(tmp_path):
    with socket.socket() as busy:
        busy.bind(('127.0.0.1', 0))
        busy.listen()
        receiver = Receiver(tmp_path / 'r')
        receiver.port = busy.getsockname()[1]
        one_line_failure(run_receiver(receiver), '127.0.0.1', str(receiver.port), 'address already in use')


# ------------------------------------------------------------------------------------------------
# 6. a disk that fills while running: 503 with Retry-After, nothing half-stored, recovered once space is freed; kill -9 while full

@needs_root
def test_a_disk_that_fills_while_running_answers_503_and_recovers(tmp_path):
    receiver = Receiver(tmp_path / 'r')
    with tmpfs(receiver.data_dir, '4m'):
        receiver.start()
        try:
            job = receiver.create_job(unique_serial())
            receiver.set_status(job['job_id'], 'provisioning')
            filler = fill(receiver.data_dir)
            big = _webhook.failed_body('bootloader-linux.service', 'disk full test', 'x' * _webhook.MAX_LOG_TAIL)
            before = receiver.snapshot()
            started = time.monotonic()
            answers = [receiver.send_webhook(job, big, delivery_id='full-disk-%02d' % n) for n in range(20)]
            assert {answer.status for answer in answers} == {503}, [answer.body[:200] for answer in answers]
            assert all(answer.header('Retry-After') and answer.header('Retry-After').isdigit() for answer in answers)
            assert 'disk is full' in answers[0].json['detail']
            assert receiver.request('POST', '/api/v1/jobs', body={'server_serial': unique_serial(), 'recipe': {
                'task_target': 'x-update.target', 'firmware_url': 'http://fw/a.bin', 'user_data': base64.b64encode(b'x' * 120000).decode()}}).status == 503
            # the node's sender, as it runs on the node: it retries 503s, then gives up (exit 75 for its unit) without claiming delivery
            with pytest.raises(_webhook.WebhookDeliveryError, match='HTTP 503') as info:
                receiver.sender(job, attempts=2, backoff=0.01).send(big, delivery_id='full-disk-sender')
            assert info.value.status == 503
            assert receiver.snapshot() == before
            elapsed = time.monotonic() - started
            lines = [line for line in log_lines(receiver) if 'cannot write' in line]
            assert 1 <= len(lines) <= elapsed + 2 and not any('Traceback' in line for line in log_lines(receiver)), lines
            # kill -9 while the disk is full: the database is intact and holds exactly what was answered 200
            receiver.kill()
            filler.unlink()
            receiver.start()
            assert receiver.snapshot() == before
            assert receiver.send_webhook(job, big, delivery_id='full-disk-00').status == 200  # the retry of the same delivery
            stored = receiver.get_job(job['job_id'])
            assert stored['status'] == 'failed' and len(stored['log_tail']) == _webhook.MAX_LOG_TAIL
        finally:
            receiver.stop()
        conn = sqlite3.connect(str(receiver.database))
        assert conn.execute('PRAGMA integrity_check').fetchone()[0] == 'ok'
        conn.close()


def test_database_sessions_ended_by_the_server_answer_503_and_the_receiver_reconnects(receiver_factory, postgres_server):
    """PostgreSQL's counterpart of storage failing under a running receiver: the server ends its sessions (a restart, a
    failover, pg_terminate_backend).  What is answered meanwhile is 503 with Retry-After and stores nothing; the receiver
    connects again by itself (writer, reader, LISTEN), and the sender's retry of the same delivery is stored once."""
    url = postgres_server.database()
    receiver = receiver_factory(extra_args=['--database-url', url])
    job = receiver.create_job(unique_serial())
    receiver.set_status(job['job_id'], 'provisioning')
    before = receiver.snapshot()
    assert postgres_server.kill_connections(url) >= 2  # the writer and the reader (and LISTEN)
    body = _webhook.failed_body('bootloader-linux.service', 'lost the database', 'log')
    answers = []

    def delivered() -> bool:
        answers.append(receiver.send_webhook(job, body, delivery_id='lost-session-01'))
        return answers[-1].status == 200

    wait_for(delivered, 30, interval=0.2, what='the webhook to be stored after the sessions ended')
    assert all(answer.status == 503 and (answer.header('Retry-After') or '').isdigit() for answer in answers[:-1]), \
        [(answer.status, answer.body[:200]) for answer in answers]
    reads = []
    wait_for(lambda: reads.append(receiver.request('GET', '/api/v1/jobs/' + job['job_id'])) or reads[-1].status == 200, 30, interval=0.2,
             what='a read after the sessions ended')
    assert {read.status for read in reads} <= {200, 503}
    stored = reads[-1].json
    assert (stored['status'], stored['reason']) == ('failed', 'lost the database')
    after = receiver.snapshot()
    assert after['jobs'] != before['jobs'] and len(after['events']) == len(before['events']) + 1  # one outcome, stored once
    assert receiver.send_webhook(job, body, delivery_id='lost-session-01').json['code'] == _webhook.DUPLICATE_DELIVERY_CODE
    assert not any('Traceback' in line for line in log_lines(receiver)), receiver.log_tail()


# ------------------------------------------------------------------------------------------------
# 7. connections: header, body and idle timeouts; the connection limit with back-pressure; the open-file limit

def _connect(receiver: Receiver) -> socket.socket:
    sock = socket.create_connection(('127.0.0.1', receiver.port), timeout=10)
    return sock


def _closed_by_server(sock: socket.socket, timeout: float) -> tuple[bool, bytes]:
    """(closed, what it sent first): read until the server closes, or ``timeout``."""
    sock.settimeout(timeout)
    data = b''
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return True, data
            data += chunk
    except TimeoutError:
        return False, data
    except ConnectionError:
        return True, data


def _health(receiver: Receiver) -> dict[str, t.Any]:
    return t.cast(dict[str, t.Any], receiver.expect(200, 'GET', '/healthz'))


def test_slow_headers_slow_bodies_and_idle_connections_are_closed(receiver_factory):
    receiver = receiver_factory(extra_args=['--header-timeout', '1', '--body-timeout', '1', '--idle-timeout', '2'])
    job = receiver.create_job(unique_serial())
    before = receiver.snapshot()
    # slowloris: a header byte every 0.2 s keeps the connection busy, never complete: closed at the header timeout
    slow = _connect(receiver)
    started = time.monotonic()
    for char in b'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ' + b'a' * 100:
        try:
            slow.send(bytes([char]))
        except OSError:
            break
        time.sleep(0.2)
        if time.monotonic() - started > 6:
            break
    closed, answer = _closed_by_server(slow, 3)
    assert closed and answer.startswith(b'HTTP/1.1 408') and time.monotonic() - started < 5, (answer, time.monotonic() - started)
    # a body that stops: 408, nothing stored
    stalled = _connect(receiver)
    path, data, headers = receiver.signed_request(job, _webhook.success_body())
    head = 'POST %s HTTP/1.1\r\nHost: x\r\n%sContent-Length: %d\r\n\r\n' % (path, ''.join('%s: %s\r\n' % item for item in headers.items()), len(data))
    stalled.sendall(head.encode() + data[:5])
    started = time.monotonic()
    closed, answer = _closed_by_server(stalled, 5)
    assert closed and b' 408 ' in answer.split(b'\r\n', 1)[0] and time.monotonic() - started < 4, answer
    assert receiver.snapshot() == before
    # 200 connections that send nothing, and one that made a request and stays open: all closed at the idle timeout
    idle = [_connect(receiver) for _n in range(200)]
    kept = _connect(receiver)
    kept.sendall(b'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')
    started = time.monotonic()
    results = [_closed_by_server(sock, 6)[0] for sock in idle + [kept]]
    assert all(results) and time.monotonic() - started < 6
    wait_for(lambda: _health(receiver)['connections']['open'] <= 2, 5, what='the idle connections gone from the count')
    for sock in idle + [kept, slow, stalled]:
        sock.close()


def test_at_the_connection_limit_idle_connections_make_room_and_busy_ones_mean_waiting(receiver_factory):
    receiver = receiver_factory(extra_args=['--max-connections', '20', '--idle-timeout', '60'])
    job = receiver.create_job(unique_serial())
    last = receiver.events(job['job_id'])[-1]['seq']
    # 25 idle connections (no request yet, then idle for a second): a request still gets through at once, an idle one is closed for it
    idle = [_connect(receiver) for _n in range(25)]
    time.sleep(1.5)
    started = time.monotonic()
    assert receiver.request('GET', '/healthz', timeout=10).status == 200
    assert time.monotonic() - started < 3
    stats = _health(receiver)['connections']
    assert stats['limit'] == 20 and stats['reclaimed'] >= 1 and stats['open'] <= 20, stats
    for sock in idle:
        sock.close()
    wait_for(lambda: _health(receiver)['connections']['open'] <= 2, 10, what='the idle connections closed')
    # 20 long polls hold every connection busy: the next request waits in the listen backlog (not refused) until one ends
    polls: list[int] = []

    def poll() -> None:
        polls.append(receiver.request('GET', '/api/v1/jobs/%s/events?after=%d&wait=4' % (job['job_id'], last), timeout=30).status)

    threads = [threading.Thread(target=poll) for _n in range(20)]
    for thread in threads[:19]:
        thread.start()
    wait_for(lambda: _health(receiver)['long_polls'] >= 19, 10, what='19 long polls parked')  # the 20th connection
    threads[19].start()
    wait_for(lambda: _accepted(receiver) == 20, 5, what='the 20th long poll accepted: every connection busy')
    started = time.monotonic()
    answer = receiver.request('GET', '/healthz', timeout=30)
    waited = time.monotonic() - started
    for thread in threads:
        thread.join(30)
    assert answer.status == 200 and polls == [200] * 20
    assert answer.json['connections']['waits'] >= 1
    assert 1.0 < waited < 10, waited
    assert sum('connection limit reached' in line for line in log_lines(receiver)) <= waited + 2


def _accepted(receiver: Receiver) -> int:
    """Connections the receiver process has accepted (its socket descriptors that are established TCP connections on its
    port), seen from outside: at its limit no request gets through to ask it."""
    assert receiver.service is not None and receiver.service.process is not None
    pid = receiver.service.process.pid
    inodes = set()
    for fd in os.listdir('/proc/%d/fd' % pid):
        try:
            target = os.readlink('/proc/%d/fd/%s' % (pid, fd))
        except OSError:
            continue
        if target.startswith('socket:['):
            inodes.add(target[8:-1])
    count = 0
    for line in Path('/proc/net/tcp').read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(':')[1], 16) == receiver.port and fields[3] == '01' and fields[9] in inodes:
            count += 1
    return count


def _limits(pid: int) -> tuple[int, int]:
    for line in Path('/proc/%d/limits' % pid).read_text().splitlines():
        if line.startswith('Max open files'):
            soft, hard = line.split()[3:5]
            return int(soft), int(hard)
    raise AssertionError('no open-file limit in /proc/%d/limits' % pid)


def test_the_soft_open_file_limit_is_raised_to_the_hard_one(tmp_path):
    wrapper = tmp_path / 'python-with-256-files'
    wrapper.write_text('#!/bin/sh\nulimit -S -n 256\nexec %s "$@"\n' % sys.executable)
    wrapper.chmod(0o755)
    receiver = Receiver(tmp_path / 'r', python=str(wrapper)).start()
    try:
        assert receiver.service is not None and receiver.service.process is not None
        soft, hard = _limits(receiver.service.process.pid)
        assert soft == hard == resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        assert any('raised from 256' in line for line in log_lines(receiver))
        stats = _health(receiver)['connections']
        assert stats['limit'] == (hard - 64) // 2
    finally:
        receiver.stop()


def test_out_of_file_descriptors_is_one_line_a_second_and_recovers(receiver_factory):
    receiver = receiver_factory(extra_args=['--idle-timeout', '60'])
    assert receiver.service is not None and receiver.service.process is not None
    pid = receiver.service.process.pid
    job = receiver.create_job(unique_serial())
    in_use = len(os.listdir('/proc/%d/fd' % pid))
    soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (in_use + 20, hard))  # as if something else had taken the descriptors
    clients: list[socket.socket] = []
    try:
        started = time.monotonic()
        clients = [_connect(receiver) for _n in range(300)]  # idle: the kernel's listen backlog holds those not accepted
        time.sleep(4)
        elapsed = time.monotonic() - started
        lines = log_lines(receiver)
        exhausted = [line for line in lines if 'cannot accept connections' in line]
        assert 1 <= len(exhausted) <= elapsed + 1, exhausted
        assert not any('Traceback' in line for line in lines) and receiver.log_path.stat().st_size < 64 * 1024
        # the load drops: served again at once
        for sock in clients:
            sock.close()
        started = time.monotonic()
        assert receiver.send_webhook(job, _webhook.progress_body('a.service', 'started')).status == 200
        assert time.monotonic() - started < 3
    finally:
        for sock in clients:
            sock.close()
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (soft, hard))


def test_a_client_that_stops_reading_a_download_is_disconnected(receiver_factory):
    receiver = receiver_factory(extra_args=['--send-timeout', '2'])
    (receiver.media_dir / 'big.iso').write_bytes(os.urandom(1 << 20) * 32)  # 32 MiB: far more than the socket buffers hold
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(('127.0.0.1', receiver.port))
    sock.sendall(b'GET /media/big.iso HTTP/1.1\r\nHost: x\r\n\r\n')
    baseline = 1  # the healthz request's own connection
    wait_for(lambda: _health(receiver)['connections']['open'] >= baseline + 1, 5, what='the download started')
    # the client reads nothing: after the send timeout the receiver drops the connection and its slot
    wait_for(lambda: _health(receiver)['connections']['open'] <= baseline, 15, what='the stalled download dropped')
    sock.close()


def _unsent_bytes(receiver: Receiver, client: socket.socket) -> int:
    """The bytes waiting unsent in the receiver's socket of the connection ``client`` is the other end of (``ss -tni``'s
    ``notsent``, left out when 0)."""
    out = subprocess.run(['ss', '-tniH', 'state', 'established', '( sport = :%d and dport = :%d )' % (receiver.port, client.getsockname()[1])],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip(), 'ss shows no connection from port %d' % client.getsockname()[1]
    match = re.search(r'\bnotsent:(\d+)', out)
    return int(match.group(1)) if match else 0


def _steady_unsent_bytes(receiver: Receiver, client: socket.socket) -> int:
    """``_unsent_bytes`` once it stops changing: the receiver has filled what the kernel lets it queue."""
    seen = [-1]

    def steady() -> bool:
        now = _unsent_bytes(receiver, client)
        previous, seen[0] = seen[0], now
        return now == previous and now > 0

    wait_for(steady, 10, interval=0.3, what='the unsent bytes steady')
    return seen[0]


@pytest.mark.parametrize('lowat', [None, 131072, 0], ids=['default', '128KiB', 'kernel'])
def test_a_connection_queues_about_notsent_lowat_bytes_unsent(receiver_factory, lowat):
    """TCP_NOTSENT_LOWAT (``--notsent-lowat``, 32 KiB by default): a client that reads slower than the receiver sends
    has about that many bytes queued unsent for it, not a whole send buffer (up to ``tcp_wmem``'s 4 MiB).  The kernel
    lets a sendfile(2) add one more segment past the mark.  0 leaves the kernel's setting (the negative control: the
    socket's whole send buffer fills)."""
    receiver = receiver_factory(extra_args=[] if lowat is None else ['--notsent-lowat', str(lowat)])
    (receiver.media_dir / 'big.iso').write_bytes(os.urandom(1 << 20) * 32)
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(('127.0.0.1', receiver.port))
        sock.sendall(b'GET /media/big.iso HTTP/1.1\r\nHost: x\r\n\r\n')
        unsent = _steady_unsent_bytes(receiver, sock)
    if lowat == 0:
        kernel = int(Path('/proc/sys/net/ipv4/tcp_notsent_lowat').read_text())
        assert unsent > min(kernel, 1 << 20), unsent  # the whole send buffer, or the kernel's own mark
    else:
        mark = lowat or 32 << 10
        assert mark // 2 <= unsent <= mark + (64 << 10), unsent


# ------------------------------------------------------------------------------------------------
# 8. malformed requests: one WARNING line each, rate-limited, no traceback

def test_malformed_requests_leave_one_warning_line_each_at_most_ten_a_second(receiver_factory):
    receiver = receiver_factory()
    started = time.monotonic()
    for n in range(100):
        with _connect(receiver) as sock:
            sock.sendall([b'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Bad: a\x01b\r\n\r\n',
                          b'POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{"a"',
                          b'\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03' + os.urandom(32)][n % 3])
            if n % 3 == 1:
                time.sleep(0.05)  # the handler is reading the body when the client hangs up
    elapsed = time.monotonic() - started
    assert receiver.request('GET', '/healthz').status == 200
    time.sleep(1.2)
    lines = log_lines(receiver)
    warnings = [line for line in lines if ' WARNING ' in line]
    assert not any('Traceback' in line or ' ERROR ' in line for line in lines), [line for line in lines if 'ERROR' in line][:5]
    assert 3 <= len(warnings) <= 10 * (elapsed + 2), (len(warnings), elapsed)
    assert any('body' in line for line in warnings) and any('HTTPS' in line or 'Invalid' in line or 'message' in line for line in warnings)
