# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark: signed status webhooks with durable writes, the receiver vs a stdlib baseline, in one run.

Both servers do the same work per webhook: look up the serial's job and token in SQLite (WAL,
``synchronous=FULL``), verify the HMAC signature, read the body strictly, store the event (the
delivery id unique) and answer only once it is committed.  The baseline is what one writes with the
standard library: ``http.server.ThreadingHTTPServer`` and one ``sqlite3`` commit per request.  The
receiver is aiohttp with group commit (all webhooks that arrive during an fsync share the next one).

1. Throughput: 256 jobs in provisioning; wrk (C, so the load generator takes little CPU from the
   servers) sends pre-signed progress webhooks, each on a new connection as a node's sender does,
   with N concurrent senders for a fixed time.  Prints webhooks/s, p50/p99 latency, refused or
   failed requests, checks that every answered webhook is in the database, and
   ``ratio = ours / baseline``.
2. 10,000 nodes at once: 10,000 jobs; 10,000 connections opened together, one success webhook each;
   counts the answers and the jobs the database holds as succeeded (none may be lost).

For scale it also measures an aiohttp handler that does nothing (``floor``): the most any
single-process aiohttp service gets from this machine under the same load generator.  ``--uvloop`` adds the floor
and the receiver on uvloop's event loop (``floor-uvloop``, ``ours-uvloop``: the same code, ``uvloop.install()``
before it starts), to see whether another well-kept event loop raises the floor itself.

The bench method (bench/_method.py): the servers on the server CPU, wrk and the burst client on the client CPU;
``--rounds`` rounds, the three servers in alternating order; ratios are medians of per-round ratios with min-max and
IQR; the load average at start and end.  The 10,000-node burst runs in the first round only.

    .venv/bin/python bench/receiver_webhooks.py                      # 32, 64 and 256 senders, 8 s each, 3 rounds, 10,000 nodes
    .venv/bin/python bench/receiver_webhooks.py --duration 4 --nodes 2000
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import typing as t
from pathlib import Path

import _method
from l3metal_contract import webhook as wh

# ------------------------------------------------------------------------------------------------
# the baseline: standard library only


def serve_baseline(port: int, db_path: str) -> None:
    import http.server

    local = threading.local()

    def db() -> sqlite3.Connection:
        conn = getattr(local, 'conn', None)
        if conn is None:
            conn = sqlite3.connect(db_path, isolation_level=None)
            conn.execute('PRAGMA journal_mode=WAL')
            conn.execute('PRAGMA synchronous=FULL')
            conn.execute('PRAGMA busy_timeout=30000')
            local.conn = conn
        return conn

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: t.Any) -> None:
            pass

        def answer(self, status: int, doc: dict[str, t.Any]) -> None:
            body = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header('Content-Type', 'application/json')
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:  # pylint: disable=invalid-name  # http.server's naming
            serial = self.path.rsplit('/', 1)[-1]
            length = int(self.headers.get('Content-Length') or 0)
            if length > wh.MAX_BODY_BYTES:
                return self.answer(413, {'detail': 'too large'})
            data = self.rfile.read(length)
            conn = db()
            row = conn.execute("SELECT job_id, token, status FROM jobs WHERE serial = ? AND status != 'complete'", (serial,)).fetchone()
            if row is None:
                return self.answer(404, {'detail': 'no active job'})
            try:
                delivery, _stamp = wh.verify(row[1], data, self.headers)
                body = wh.parse_body(data)
            except wh.SignatureError as exc:
                return self.answer(401, {'detail': str(exc)})
            except wh.BodyError as exc:
                return self.answer(400, {'detail': str(exc)})
            status = {'success': 'succeeded', 'failed': 'failed'}.get(body['status'], 'provisioning')
            conn.execute('BEGIN IMMEDIATE')
            try:
                conn.execute('INSERT INTO events (job_id, type, step, delivery_id) VALUES (?, ?, ?, ?)',
                             (row[0], body['status'], body.get('step'), delivery))
                conn.execute('UPDATE jobs SET status = ? WHERE job_id = ?', (status, row[0]))
                conn.execute('COMMIT')
            except sqlite3.IntegrityError:
                conn.execute('ROLLBACK')
                return self.answer(409, {'detail': 'duplicate delivery'})
            return self.answer(200, {'job_id': row[0], 'status': status})

    server = http.server.ThreadingHTTPServer(('127.0.0.1', port), Handler)
    server.daemon_threads = True
    server.serve_forever()


def serve_floor(port: int, use_uvloop: bool = False) -> None:
    from aiohttp import web

    if use_uvloop:
        install_uvloop()

    async def nothing(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=b'{}', content_type='application/json')

    app = web.Application()
    app.router.add_post('/api/v1/status-webhook/{serial}', nothing)
    web.run_app(app, host='127.0.0.1', port=port, access_log=None, print=None)


def install_uvloop() -> None:
    import uvloop  # pylint: disable=import-outside-toplevel,import-error

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


# the receiver as ``python -m l3metal_receiver`` runs it, on uvloop's event loop
OURS_ON_UVLOOP = ('import asyncio, sys, uvloop; asyncio.set_event_loop_policy(uvloop.EventLoopPolicy()); '
                  'from l3metal_receiver.server import main; sys.exit(main(sys.argv[1:]))')


def init_baseline_db(db_path: str, jobs: dict[str, str], status: str) -> None:
    conn = sqlite3.connect(db_path)
    conn.executescript('''
        PRAGMA journal_mode=WAL;
        CREATE TABLE IF NOT EXISTS jobs (job_id TEXT PRIMARY KEY, serial TEXT, token TEXT, status TEXT);
        CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, job_id TEXT, type TEXT, step TEXT, delivery_id TEXT UNIQUE);
    ''')
    conn.executemany('INSERT INTO jobs VALUES (?, ?, ?, ?)', [('job-' + serial, serial, token, status) for serial, token in jobs.items()])
    conn.commit()
    conn.close()


# ------------------------------------------------------------------------------------------------
# servers under test


def free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    import socket
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError('server exited with %s' % process.returncode)
        try:
            with socket.create_connection(('127.0.0.1', port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError('server did not listen on %d' % port)


class Server:
    def __init__(self, kind: str, workdir: Path) -> None:
        self.kind = kind
        self.base, _dash, loop = kind.partition('-')  # ours, floor, baseline; '-uvloop': on uvloop
        self.uvloop = loop == 'uvloop'
        self.dir = workdir / kind
        self.dir.mkdir(parents=True)
        self.port = free_port()
        self.url = 'http://127.0.0.1:%d' % self.port
        self.process: subprocess.Popen[bytes] | None = None
        self.db = str(self.dir / ('receiver.sqlite3' if self.base == 'ours' else 'baseline.sqlite3'))

    def start(self) -> Server:
        env = dict(os.environ)
        if self.base == 'ours':
            argv = [sys.executable] + (['-c', OURS_ON_UVLOOP] if self.uvloop else ['-m', 'l3metal_receiver']) + [
                '--host', '127.0.0.1', '--port', str(self.port),
                '--data-dir', str(self.dir), '--media-dir', str(self.dir / 'media'), '--log-level', 'WARNING']
        elif self.base == 'floor':
            argv = [sys.executable, __file__, '--serve-floor', str(self.port)] + (['--uvloop'] if self.uvloop else [])
        else:
            argv = [sys.executable, __file__, '--serve-baseline', str(self.port), self.db]
        with open(self.dir / 'server.log', 'ab') as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        wait_port(self.port, self.process)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)

    def stored_events(self) -> int:
        if self.base == 'floor':
            return 0
        conn = sqlite3.connect('file:%s?mode=ro' % self.db, uri=True)
        try:
            if self.base == 'ours':
                return int(conn.execute("SELECT COUNT(*) FROM events WHERE delivery_id IS NOT NULL").fetchone()[0])
            return int(conn.execute('SELECT COUNT(*) FROM events').fetchone()[0])
        finally:
            conn.close()

    def succeeded_jobs(self) -> int:
        conn = sqlite3.connect('file:%s?mode=ro' % self.db, uri=True)
        try:
            return int(conn.execute("SELECT COUNT(*) FROM jobs WHERE status = 'succeeded'").fetchone()[0])
        finally:
            conn.close()

    def create_jobs(self, count: int, prefix: str, provisioning: bool) -> dict[str, str]:
        """serial -> token for ``count`` new jobs."""
        serials = ['%s-%05d' % (prefix, n) for n in range(count)]
        if self.base == 'floor':
            return {serial: 'floor-token-%s-0123456789' % serial for serial in serials}
        if self.kind == 'baseline':
            jobs = {serial: 'baseline-token-%s-0123456789' % serial for serial in serials}
            self.stop()
            init_baseline_db(self.db, jobs, 'provisioning' if provisioning else 'queued')
            self.start()
            return jobs
        return asyncio.run(_create_jobs(self.url, serials, provisioning))


async def _create_jobs(url: str, serials: list[str], provisioning: bool) -> dict[str, str]:
    import aiohttp

    recipe = {'task_target': 'supermicro-update.target', 'firmware_url': 'http://fw.example.com/bios.bin'}
    out: dict[str, str] = {}
    limit = asyncio.Semaphore(32)
    async with aiohttp.ClientSession() as session:
        async def one(serial: str) -> None:
            async with limit:
                async with session.post(url + '/api/v1/jobs', json={'server_serial': serial, 'recipe': recipe}) as answer:
                    doc = await answer.json()
                    if answer.status != 202:
                        raise RuntimeError('create job: %s %s' % (answer.status, doc))
                if provisioning:
                    async with session.post(url + '/api/v1/jobs/%s/status' % doc['job_id'], json={'status': 'provisioning'}) as answer:
                        await answer.read()
                out[serial] = doc['token']
        await asyncio.gather(*(one(serial) for serial in serials))
    return out


# ------------------------------------------------------------------------------------------------
# load


def raw_request(port: int, serial: str, token: str, body: dict[str, t.Any], delivery: str) -> bytes:
    data = wh.encode_body(body)
    headers = wh.sign(token, data, delivery)
    lines = ['POST %s%s HTTP/1.1' % (wh.WEBHOOK_PATH, serial), 'Host: 127.0.0.1:%d' % port, 'Content-Type: application/json',
             'Content-Length: %d' % len(data), 'Connection: close'] + ['%s: %s' % item for item in headers.items()]
    return ('\r\n'.join(lines) + '\r\n\r\n').encode() + data


LUA = r'''
local counter = 0
local threads = {}
function setup(thread)
    thread:set("id", counter)
    counter = counter + 1
    table.insert(threads, thread)
end
function init(args)
    local f = assert(io.open(args[1] .. "." .. id, "rb"))
    local data = f:read("*a")
    f:close()
    reqs = {}
    for r in string.gmatch(data, "([^%z]+)") do table.insert(reqs, r) end
    n = 0
end
function request()
    n = n + 1
    if n > #reqs then n = #reqs end   -- exhausted: repeats answer 409 and show up as non-2xx
    return reqs[n]
end
'''


def run_wrk(server: Server, jobs: dict[str, str], concurrency: int, duration: float, workdir: Path, per_second: int) -> dict[str, t.Any]:
    threads = 2
    base = workdir / ('requests-%s-%d' % (server.kind, concurrency))
    serials = list(jobs)
    total = int(per_second * duration) + concurrency * 4
    per_thread = total // threads + 1
    stamp = '%x' % int(time.time() * 1000)
    for thread in range(threads):
        with open('%s.%d' % (base, thread), 'wb') as handle:
            for n in range(per_thread):
                serial = serials[(n * threads + thread) % len(serials)]
                delivery = 'b%s-%d-%d' % (stamp, thread, n)
                body = {'status': 'progress', 'step': 'bench-%d.service' % n, 'state': 'done'}
                handle.write(raw_request(server.port, serial, jobs[serial], body, delivery) + b'\0')
    script = workdir / 'webhooks.lua'
    script.write_text(LUA)
    before = server.stored_events()
    argv = ['wrk', '-t%d' % threads, '-c%d' % concurrency, '-d%gs' % duration, '--latency', '--timeout', '10s', '-s', str(script),
            server.url, '--', str(base)]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    for thread in range(threads):
        os.unlink('%s.%d' % (base, thread))
    return parse_wrk(out) | {'stored': server.stored_events() - before}


def _ms(text: str) -> float:
    value, unit = re.match(r'([0-9.]+)(us|ms|s)', text).groups()  # type: ignore[union-attr]
    return float(value) * {'us': 0.001, 'ms': 1.0, 's': 1000.0}[unit]


def parse_wrk(out: str) -> dict[str, t.Any]:
    requests = int(re.search(r'(\d+) requests in ([0-9.]+)(\w+)', out).group(1))  # type: ignore[union-attr]
    rate = float(re.search(r'Requests/sec:\s+([0-9.]+)', out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r'\s50%\s+(\S+)', out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r'\s99%\s+(\S+)', out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r'Non-2xx or 3xx responses: (\d+)', out)
    errors = re.search(r'Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)', out)
    return {'requests': requests, 'rate': rate, 'p50': p50, 'p99': p99, 'non2xx': int(non2xx.group(1)) if non2xx else 0,
            'socket_errors': sum(int(n) for n in errors.groups()) if errors else 0}


async def _burst(port: int, requests: list[bytes], timeout: float) -> dict[str, int]:
    counts: dict[str, int] = {}

    async def one(raw: bytes) -> None:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection('127.0.0.1', port), timeout)
            writer.write(raw)
            await writer.drain()
            head = await asyncio.wait_for(reader.readline(), timeout)
            writer.close()
            key = head.split()[1].decode() if head else 'no answer'
        except (OSError, TimeoutError) as exc:  # asyncio.TimeoutError is TimeoutError on 3.11
            key = type(exc).__name__
        counts[key] = counts.get(key, 0) + 1

    await asyncio.gather(*(one(raw) for raw in requests))
    return counts


def nodes_at_once(server: Server, count: int) -> dict[str, t.Any]:
    jobs = server.create_jobs(count, 'NODE', provisioning=True)
    requests = [raw_request(server.port, serial, token, wh.success_body(), 'node-%s' % serial) for serial, token in jobs.items()]
    start = time.monotonic()
    counts = asyncio.run(_burst(server.port, requests, timeout=60))
    elapsed = time.monotonic() - start
    return {'answers': counts, 'elapsed': elapsed, 'succeeded': server.succeeded_jobs()}


# ------------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--duration', type=float, default=8.0, help='seconds per load run (default 8)')
    parser.add_argument('--concurrency', default='32,64,256', help='concurrent senders, comma-separated (default 32,64,256)')
    parser.add_argument('--nodes', type=int, default=10000, help='nodes reporting at once (default 10000; 0 skips)')
    parser.add_argument('--rounds', type=int, default=3, help='rounds, alternating the order of the servers (default 3)')
    parser.add_argument('--no-pin', action='store_true', help='do not pin the servers and the client to different CPUs')
    parser.add_argument('--workdir', help='where to put databases and request files (default: a new temporary directory)')
    parser.add_argument('--serve-baseline', nargs=2, metavar=('PORT', 'DB'), help=argparse.SUPPRESS)
    parser.add_argument('--serve-floor', type=int, metavar='PORT', help=argparse.SUPPRESS)
    parser.add_argument('--uvloop', action='store_true', help='also the floor and the receiver on uvloop (pip install uvloop)')
    args = parser.parse_args()
    if args.serve_baseline:
        serve_baseline(int(args.serve_baseline[0]), args.serve_baseline[1])
        return 0
    if args.serve_floor:
        serve_floor(args.serve_floor, args.uvloop)
        return 0
    if not shutil.which('wrk'):
        print('wrk is missing: apt-get install wrk (make test installs it: tests/apt-packages.d/receiver.txt)')
        return 2
    if args.uvloop and importlib.util.find_spec('uvloop') is None:
        print('--uvloop needs uvloop in this virtualenv: %s -m pip install uvloop (not a dependency of the collection)' % sys.executable)
        return 2
    method = _method.Method(enabled=not args.no_pin).start('receiver_webhooks')
    method.pin_client()
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # 10,000 connections from this process, inherited by the servers

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix='receiver-bench-'))
    levels = [int(level) for level in args.concurrency.split(',')]
    kinds = ['baseline', 'ours', 'floor'] + (['ours-uvloop', 'floor-uvloop'] if args.uvloop else [])
    rounds: dict[str, dict[int, list[dict[str, t.Any]]]] = {kind: {} for kind in kinds}
    bursts: dict[str, dict[str, t.Any]] = {}
    try:
        for round_index in range(args.rounds):
            for kind in _method.order(round_index, kinds):
                server = Server(kind, workdir / ('round-%d' % round_index)).start()
                try:
                    jobs = server.create_jobs(256, 'LOAD', provisioning=True)
                    assert server.process is not None
                    method.pin_server(server.process.pid)
                    for level in levels:
                        result = run_wrk(server, jobs, level, args.duration, workdir, per_second=12000 if server.base == 'ours' else 2000)
                        rounds[kind].setdefault(level, []).append(result)
                        print('round %d %-12s %4d senders: %8.0f webhooks/s  p50 %7.1f ms  p99 %7.1f ms  non-2xx %d  socket errors %d  stored %d'
                              % (round_index + 1, kind, level, result['rate'], result['p50'], result['p99'], result['non2xx'], result['socket_errors'],
                                 result['stored']), flush=True)
                    if args.nodes and kind in ('ours', 'baseline') and round_index == 0:
                        bursts[kind] = burst = nodes_at_once(server, args.nodes)
                        print('%-8s %d nodes at once: answers %s in %.1f s; jobs succeeded in the database: %d of %d'
                              % (kind, args.nodes, burst['answers'], burst['elapsed'], burst['succeeded'], args.nodes), flush=True)
                finally:
                    server.stop()
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)

    results = {kind: {level: min(runs, key=lambda run: abs(run['rate'] - statistics.median(r['rate'] for r in runs)))
                      for level, runs in by_level.items()} for kind, by_level in rounds.items()}  # the median round of each
    print()
    print('summary (same machine, same run; wrk on a new connection per webhook, %g s per level; os.cpu_count()=%s, load average %s)'
          % (args.duration, os.cpu_count(), ' '.join(open('/proc/loadavg').read().split()[:3])))
    ok = True
    for level in levels:
        ours, base, floor = results['ours'][level], results['baseline'][level], results['floor'][level]
        ratio = ours['rate'] / base['rate'] if base['rate'] else float('inf')
        print('  %4d senders: ours %.0f/s (p50 %.1f ms, p99 %.1f ms) vs baseline %.0f/s (p50 %.1f ms, p99 %.1f ms, %d socket errors): '
              'ratio = ours / baseline = %.1f; empty aiohttp handler %.0f/s (ours = %.0f%% of it)'
              % (level, ours['rate'], ours['p50'], ours['p99'], base['rate'], base['p50'], base['p99'], base['socket_errors'], ratio,
                 floor['rate'], 100.0 * ours['rate'] / floor['rate'] if floor['rate'] else 0))
        rates = {kind: [run['rate'] for run in rounds[kind][level]] for kind in rounds}
        print('    ' + _method.ratio_line('ours / baseline', rates['ours'], rates['baseline'], 1))
        print('    ' + _method.ratio_line('ours / floor (empty aiohttp handler)', rates['ours'], rates['floor']))
        if args.uvloop:
            print('    ' + _method.ratio_line('floor on uvloop / floor', rates['floor-uvloop'], rates['floor']))
            print('    ' + _method.ratio_line('ours on uvloop / ours', rates['ours-uvloop'], rates['ours']))
            print('    ' + _method.ratio_line('ours on uvloop / floor on uvloop', rates['ours-uvloop'], rates['floor-uvloop']))
            print('    ' + _method.ratio_line('ours on uvloop / floor (asyncio)', rates['ours-uvloop'], rates['floor']))
        for kind in [kind for kind in kinds if kind.startswith('ours')]:
            answered = sum(run['requests'] - run['non2xx'] for run in rounds[kind][level])
            stored = sum(run['stored'] for run in rounds[kind][level])
            if stored < answered:
                print('  LOST (%s): %d webhooks answered, %d stored' % (kind, answered, stored))
                ok = False
    if 'ours' in bursts:
        burst = bursts['ours']
        lost = args.nodes - burst['succeeded']
        print('  %d nodes at once: ours recorded %d (lost %d), baseline recorded %d' % (
            args.nodes, burst['succeeded'], lost, bursts.get('baseline', {}).get('succeeded', 0)))
        ok = ok and lost == 0
    method.end()
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
