# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Soak: the receiver under hostile input and load for minutes, in-process and as the real process.

1. In-process (``create_app`` under aiohttp's test client): every fuzz case of the unit suite
   (``l3metal_lab.receiver_fuzz.CASES``) and the job-lives state machine, in rounds with new random
   seeds, for half the time; after every case: no 5xx, nothing stored changed by a 4xx or a read, the
   store's invariants.
2. The real process (``python -m l3metal_receiver``, as the role runs it): ``--threads`` clients run
   job lives (create, signed webhooks from the fuzz strategies, retries, user transitions, completion)
   with garbage mixed in (malformed HTTP, idle and slowloris connections, clients hanging up in a
   body); in the middle the process is killed with SIGKILL and restarted.  Checked: no 5xx; every
   webhook answered 200 is stored after the kill; the store's invariants at the end; the process's
   memory and open descriptors come back down; the log stays small (no tracebacks).

3. What the hardening costs: the same well-formed load (job lives: create, provisioning, progress
   webhooks, success, complete; no garbage, which the peer would answer 500 or hold forever) against
   this receiver and against the peer, the receiver of ``--peer-ref`` (default ``main``, exported with
   ``git archive`` from this checkout and run from that copy), in alternating rounds of the same
   length on fresh data directories.  Prints requests/s and p50/p99 latency per side and
   ``ratio = ours / peer`` (median requests/s); above 1 is faster than the peer.

The bench method (bench/_method.py): the load average at start and end, part 3's ratio as the median of the per-round
ratios with min-max and IQR (its rounds already alternate who goes first).  Not pinned: each round starts its receiver
afresh through the lab, and parts 1-2 are not comparisons.  Parts 1 and 2 have no peer (the peer fails their checks by design: that is issue 15); they print
figures and failures.  The script exits 1 when a check failed.

    .venv/bin/python bench/receiver_soak.py                  # 4 minutes, then the peer comparison (3 rounds of 10 s a side)
    .venv/bin/python bench/receiver_soak.py --minutes 30 --threads 16
    .venv/bin/python bench/receiver_soak.py --only peer --rounds 5 --round-seconds 20
"""

from __future__ import annotations

import argparse
import collections
import logging
import os
import random
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import typing as t
import warnings
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import NonInteractiveExampleWarning
from hypothesis.stateful import run_state_machine_as_test

import _method
import l3metal_receiver
from l3metal_contract import webhook
from l3metal_lab import receiver_fuzz as fz
from l3metal_lab.receiver import FIRMWARE_RECIPE, Receiver
from l3metal_lab.receiver_inprocess import InProcess, StoreChecker

FAILURES: list[str] = []


def fail(message: str) -> None:
    FAILURES.append(message)
    print('FAIL: ' + message, flush=True)


# ------------------------------------------------------------------------------------------------ 1. in-process

def _run_case(chunk: settings, case: t.Callable[..., None], strategies: dict[str, st.SearchStrategy[t.Any]], harness: InProcess,
              tally: fz.Tally) -> None:
    @chunk
    @given(**strategies)
    def run(**drawn: t.Any) -> None:
        case(harness, tally, **drawn)

    run()


def soak_in_process(seconds: float, work: Path) -> None:
    work.mkdir(parents=True)
    log = work / 'in-process.log'  # the receiver's own lines (one per malformed request, rate-limited), as the process writes them
    handler = logging.FileHandler(log)
    handler.setFormatter(logging.Formatter('%(asctime)s %(levelname)s %(name)s: %(message)s'))
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.INFO)
    harness = InProcess(work)
    tally = fz.Tally()
    started = time.monotonic()
    rounds = 0
    chunk = settings(max_examples=100, deadline=None, database=None, phases=(Phase.generate,),
                     suppress_health_check=list(HealthCheck))
    try:
        while time.monotonic() - started < seconds:
            rounds += 1
            for name, (case, strategies, _examples) in sorted(fz.CASES.items()):
                try:
                    _run_case(chunk, case, strategies, harness, tally)
                except Exception as exc:  # pylint: disable=broad-exception-caught
                    fail('in-process case %s: %s' % (name, str(exc).splitlines()[0] if str(exc) else type(exc).__name__))
                if time.monotonic() - started >= seconds:
                    break
            fz.JobLives.harness = harness
            fz.JobLives.tally = tally
            try:
                run_state_machine_as_test(fz.JobLives, settings=settings(chunk, max_examples=5, stateful_step_count=40))
            except Exception as exc:  # pylint: disable=broad-exception-caught
                fail('in-process job lives: %s' % (str(exc).splitlines()[0] if str(exc) else type(exc).__name__))
        harness.invariants(full=True)
    finally:
        harness.close()
        logging.getLogger().removeHandler(handler)
        handler.close()
    elapsed = time.monotonic() - started
    lines = log.read_text(errors='replace').splitlines()
    if any('Traceback' in line or ' ERROR ' in line for line in lines):
        fail('in-process: errors in the log: %s' % [line for line in lines if ' ERROR ' in line][:3])
    statuses = collections.Counter(status for (_kind, status), count in tally.counts.items() for _n in range(count))
    print('in-process: %d cases in %d rounds, %.0f s (%.0f cases/s); answers %s; 5xx: %d; log %d lines (%d WARNING)'
          % (tally.cases, rounds, elapsed, tally.cases / elapsed, dict(sorted(statuses.items())), sum(n for s, n in statuses.items() if s >= 500),
             len(lines), sum(' WARNING ' in line for line in lines)), flush=True)


# ------------------------------------------------------------------------------------------------ 2. the real process

def pool(strategy: st.SearchStrategy[t.Any], size: int) -> list[t.Any]:
    """``size`` values of a fuzz strategy, drawn once (the load threads pick from them)."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', NonInteractiveExampleWarning)
        return [strategy.example() for _n in range(size)]


class Load:
    """What the client threads saw: answers by status, webhooks answered 200, connection errors."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.statuses: collections.Counter[int] = collections.Counter()
        self.stored: list[tuple[str, str]] = []     # (job id, delivery id) answered 200
        self.errors: collections.Counter[str] = collections.Counter()
        self.requests = 0

    def answer(self, status: int) -> None:
        with self.lock:
            self.statuses[status] += 1
            self.requests += 1

    def error(self, exc: BaseException) -> None:
        with self.lock:
            self.errors[type(exc).__name__] += 1


def client(receiver: Receiver, load: Load, stop: threading.Event, number: int, bodies: list[t.Any], garbage: list[bytes],
           queries: list[str]) -> None:
    rng = random.Random(number)
    serial_count = 0
    while not stop.is_set():
        try:
            serial_count += 1
            serial = 'SOAK-%d-%d' % (number, serial_count)
            answer = receiver.request('POST', '/api/v1/jobs', body={'server_serial': serial, 'recipe': FIRMWARE_RECIPE})
            load.answer(answer.status)
            if answer.status != 202:
                continue
            job = answer.json
            for _step in range(rng.randint(1, 6)):
                body = rng.choice(bodies)
                delivery = webhook.new_delivery_id()
                sent = receiver.send_webhook(job, webhook.json.dumps(body).encode(), delivery_id=delivery)
                load.answer(sent.status)
                if sent.status == 200:
                    with load.lock:
                        load.stored.append((job['job_id'], delivery))
                    if rng.random() < 0.3:  # the retry of a delivery whose answer was "lost"
                        again = receiver.send_webhook(job, webhook.json.dumps(body).encode(), delivery_id=delivery)
                        load.answer(again.status)
                        if again.status not in (409, 503):
                            fail('a retry of a stored delivery answered %d' % again.status)
                roll = rng.random()
                if roll < 0.15:
                    load.answer(receiver.request('GET', '/api/v1/jobs?' + rng.choice(queries)).status)
                elif roll < 0.25:
                    raw_garbage(receiver, rng.choice(garbage))
                elif roll < 0.28:
                    hang_up_in_body(receiver)
            load.answer(receiver.request('POST', '/api/v1/jobs/%s/status' % job['job_id'], body={'status': 'complete'}).status)
        except OSError as exc:  # the kill -9 in the middle: connections refused until the restart
            load.error(exc)
            time.sleep(0.05)


def raw_garbage(receiver: Receiver, data: bytes) -> None:
    try:
        with socket.create_connection(('127.0.0.1', receiver.port), timeout=2) as sock:
            sock.sendall(data)
            sock.recv(4096)
    except OSError:
        pass


def hang_up_in_body(receiver: Receiver) -> None:
    try:
        with socket.create_connection(('127.0.0.1', receiver.port), timeout=2) as sock:
            sock.sendall(b'POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 900\r\n\r\n{"server')
            time.sleep(0.05)
    except OSError:
        pass


def idle_and_slow(receiver: Receiver, stop: threading.Event, count: int) -> None:
    """``count`` connections that send nothing or a header byte now and then, renewed as the receiver closes them."""
    sockets: list[socket.socket] = []
    while not stop.is_set():
        while len(sockets) < count:
            try:
                sock = socket.create_connection(('127.0.0.1', receiver.port), timeout=1)
                sock.setblocking(False)
                sockets.append(sock)
            except OSError:
                break
        for sock in list(sockets):
            try:
                if random.random() < 0.5:
                    sock.send(b'G')
                if sock.recv(4096) == b'':
                    raise ConnectionError
            except BlockingIOError:
                pass
            except OSError:
                sock.close()
                sockets.remove(sock)
        time.sleep(0.5)
    for sock in sockets:
        sock.close()


def process_figures(pid: int) -> tuple[int, int]:
    """(RSS in KiB, open descriptors) of a process."""
    rss = 0
    for line in Path('/proc/%d/status' % pid).read_text().splitlines():
        if line.startswith('VmRSS:'):
            rss = int(line.split()[1])
    return rss, len(os.listdir('/proc/%d/fd' % pid))


def soak_process(seconds: float, work: Path, threads: int) -> None:
    receiver = Receiver(work, extra_args=['--header-timeout', '2', '--idle-timeout', '5', '--body-timeout', '2'])
    receiver.start()
    bodies = pool(fz.VALID_WEBHOOKS, 300) + pool(fz.WEBHOOK_BODIES, 300)
    garbage = [fz.raw_request(line, headers, body) for line, headers, body in pool(st.tuples(fz.RAW_LINES, fz.RAW_HEADERS, st.binary(max_size=40)), 200)]
    queries = pool(fz.QUERIES, 200)
    load = Load()
    stop = threading.Event()
    workers = [threading.Thread(target=client, args=(receiver, load, stop, n, bodies, garbage, queries), daemon=True) for n in range(threads)]
    workers.append(threading.Thread(target=idle_and_slow, args=(receiver, stop, 200), daemon=True))
    assert receiver.service is not None and receiver.service.process is not None
    figures = [process_figures(receiver.service.process.pid)]
    started = time.monotonic()
    for worker in workers:
        worker.start()
    killed = False
    while time.monotonic() - started < seconds:
        time.sleep(1)
        try:
            figures.append(process_figures(receiver.service.process.pid))
        except OSError:
            pass
        if not killed and time.monotonic() - started > seconds / 2:
            with load.lock:
                answered = list(load.stored)
            receiver.kill()  # SIGKILL under load
            receiver.start()
            killed = True
            missing = stored_deliveries(receiver.database, answered)
            if missing:
                fail('%d of %d webhooks answered 200 before the kill -9 are not stored' % (len(missing), len(answered)))
            else:
                print('kill -9 under load: all %d webhooks answered 200 before it are stored' % len(answered), flush=True)
    stop.set()
    for worker in workers:
        worker.join(30)
    elapsed = time.monotonic() - started
    time.sleep(6)  # the idle timeout closes what the load left open
    end = process_figures(receiver.service.process.pid)
    try:
        StoreChecker(receiver.store, receiver.media_dir).check(full=True)
    except AssertionError as exc:
        fail('invariants after the soak: %s' % exc)
    missing = stored_deliveries(receiver.database, load.stored)
    if missing:
        fail('%d of %d webhooks answered 200 are not stored' % (len(missing), len(load.stored)))
    receiver.stop()
    log = receiver.log_path.read_text(errors='replace').splitlines()
    tracebacks = sum('Traceback' in line for line in log)
    fives = sum(count for status, count in load.statuses.items() if status >= 500 and status != 503)
    if fives:
        fail('the receiver answered %d server errors: %s' % (fives, dict(load.statuses)))
    if tracebacks:
        fail('%d tracebacks in the log' % tracebacks)
    peak_rss = max(rss for rss, _fds in figures)
    peak_fds = max(fds for _rss, fds in figures)
    print('real process: %d requests from %d threads in %.0f s (%.0f/s), answers %s, connection errors %s'
          % (load.requests, threads, elapsed, load.requests / elapsed, dict(sorted(load.statuses.items())), dict(load.errors)))
    print('  webhooks answered 200 and stored: %d; RSS start %d KiB, peak %d KiB, end %d KiB; open descriptors start %d, peak %d, end %d'
          % (len(load.stored), figures[0][0], peak_rss, end[0], figures[0][1], peak_fds, end[1]))
    print('  log: %d lines (%.1f a second), %d bytes, %d WARNING, %d ERROR, %d tracebacks'
          % (len(log), len(log) / elapsed, receiver.log_path.stat().st_size, sum(' WARNING ' in line for line in log),
             sum(' ERROR ' in line for line in log), tracebacks), flush=True)
    if end[1] > figures[0][1] + 20:
        fail('open descriptors did not come back down: %d at the start, %d at the end' % (figures[0][1], end[1]))


def stored_deliveries(database: Path, answered: t.Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    conn = sqlite3.connect('file:%s?mode=ro' % database, uri=True)
    try:
        stored = set(conn.execute('SELECT job_id, delivery_id FROM events WHERE delivery_id IS NOT NULL').fetchall())
    finally:
        conn.close()
    return [item for item in answered if item not in stored]


# ------------------------------------------------------------------------------------------------ 3. the peer: the receiver of --peer-ref

def export_peer(ref: str, into: Path) -> Path:
    """The receiver and contract packages of ``ref`` (a git revision of this checkout) in ``into``; returns a python wrapper
    that runs them (PYTHONPATH comes before the editable installs of this checkout)."""
    checkout = Path(l3metal_receiver.__file__).resolve().parents[2]
    into.mkdir(parents=True)
    archive = subprocess.run(['git', '-C', str(checkout), 'archive', '--format=tar', ref, 'receiver', 'common'], check=True, capture_output=True)
    subprocess.run(['tar', '-x', '-C', str(into)], input=archive.stdout, check=True)
    commit = subprocess.run(['git', '-C', str(checkout), 'rev-parse', '--short', ref], check=True, capture_output=True, text=True).stdout.strip()
    wrapper = into / 'python'
    wrapper.write_text('#!/bin/sh\nPYTHONPATH=%s:%s exec %s "$@"\n' % (into / 'receiver', into / 'common', sys.executable))
    wrapper.chmod(0o755)
    print('peer: the receiver of %s (%s), from %s' % (ref, commit, into), flush=True)
    return wrapper


def job_lives(receiver: Receiver, seconds: float, threads: int, tag: str) -> tuple[float, list[float], collections.Counter[int]]:
    """``threads`` clients doing whole job lives for ``seconds``: (requests/s, latencies, answers by status)."""
    stop = threading.Event()
    latencies: list[float] = []
    statuses: collections.Counter[int] = collections.Counter()
    lock = threading.Lock()

    def timed(call: t.Callable[..., t.Any], *args: t.Any, **kwargs: t.Any) -> t.Any:
        started = time.perf_counter()
        answer = call(*args, **kwargs)
        with lock:
            latencies.append(time.perf_counter() - started)
            statuses[answer.status] += 1
        return answer

    def worker(number: int) -> None:
        lives = 0
        while not stop.is_set():
            lives += 1
            serial = '%s-%d-%d' % (tag, number, lives)
            created = timed(receiver.request, 'POST', '/api/v1/jobs', body={'server_serial': serial, 'recipe': FIRMWARE_RECIPE})
            if created.status != 202:
                continue
            job = created.json
            status_path = '/api/v1/jobs/%s/status' % job['job_id']
            timed(receiver.request, 'POST', status_path, body={'status': 'provisioning'})
            for step in ('partition.service', 'image-linux.service', 'bootloader-linux.service'):
                timed(receiver.send_webhook, job, webhook.progress_body(step, 'done'))
            timed(receiver.send_webhook, job, webhook.success_body())
            timed(receiver.request, 'GET', '/api/v1/jobs/%s' % job['job_id'])
            timed(receiver.request, 'POST', status_path, body={'status': 'complete'})

    workers = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(threads)]
    started = time.monotonic()
    for thread in workers:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in workers:
        thread.join(30)
    elapsed = time.monotonic() - started
    return len(latencies) / elapsed, latencies, statuses


def compare_with_peer(work: Path, ref: str, rounds: int, seconds: float, threads: int) -> None:
    wrapper = export_peer(ref, work / 'peer-source')
    results: dict[str, list[tuple[float, list[float]]]] = {'ours': [], 'peer': []}
    for number in range(rounds):
        for side in _method.order(number, ['ours', 'peer']):  # alternate who goes first
            directory = work / ('%s-%d' % (side, number))
            receiver = Receiver(directory, python=sys.executable if side == 'ours' else str(wrapper))
            receiver.start()
            try:
                health = receiver.expect(200, 'GET', '/healthz')
                if ('connections' in health) != (side == 'ours'):
                    fail('the %s side is not the receiver it should be (/healthz: %s)' % (side, health))
                rate, latencies, statuses = job_lives(receiver, seconds, threads, side.upper())
            finally:
                receiver.stop()
                shutil.rmtree(directory, ignore_errors=True)
            wrong = {status: count for status, count in statuses.items() if status not in (200, 202)}
            if wrong:
                fail('%s round %d: answers other than 200/202 to a well-formed load: %s' % (side, number + 1, wrong))
            results[side].append((rate, latencies))
            ordered = sorted(latencies)
            print('  round %d %-4s: %6.0f requests/s, p50 %.1f ms, p99 %.1f ms (%d requests, %d threads)'
                  % (number + 1, side, rate, 1000 * ordered[len(ordered) // 2], 1000 * ordered[int(len(ordered) * 0.99)], len(ordered), threads),
                  flush=True)
    ours = statistics.median(rate for rate, _l in results['ours'])
    peer = statistics.median(rate for rate, _l in results['peer'])

    def p99(side: str) -> float:
        return statistics.median(sorted(latencies)[int(len(latencies) * 0.99)] for _rate, latencies in results[side])

    per_round = ', '.join('%.2f' % (a[0] / b[0]) for a, b in zip(results['ours'], results['peer'], strict=True))
    print('ours: %.0f requests/s, peer (%s): %.0f requests/s (medians of %d rounds of %g s)' % (ours, ref, peer, rounds, seconds))
    print(_method.ratio_line('ours / peer', [rate for rate, _l in results['ours']], [rate for rate, _l in results['peer']],
                             note='requests/s; per round %s; p99 latency ours / peer %.2f' % (per_round, p99('ours') / p99('peer'))), flush=True)


def main(argv: t.Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--minutes', type=float, default=4.0, help='total time, half in-process, half against the process (default 4)')
    parser.add_argument('--threads', type=int, default=8, help='client threads against the real process (default 8)')
    parser.add_argument('--only', choices=['in-process', 'process', 'peer'], help='run one part only (in-process, process: for all the time)')
    parser.add_argument('--peer-ref', default='main', help='git revision whose receiver is the peer of part 3 (default main)')
    parser.add_argument('--rounds', type=int, default=3, help='rounds per side in part 3 (default 3)')
    parser.add_argument('--round-seconds', type=float, default=10.0, help='seconds per round and side in part 3 (default 10)')
    args = parser.parse_args(argv)
    seconds = args.minutes * 60
    method = _method.Method(enabled=False).start('receiver_soak')
    with tempfile.TemporaryDirectory(prefix='receiver-soak-') as work:
        if args.only in (None, 'in-process'):
            soak_in_process(seconds if args.only else seconds / 2, Path(work) / 'in-process')
        if args.only in (None, 'process'):
            soak_process(seconds if args.only else seconds / 2, Path(work) / 'process', args.threads)
        if args.only in (None, 'peer'):
            compare_with_peer(Path(work) / 'peer', args.peer_ref, args.rounds, args.round_seconds, args.threads)
    print('soak: %s' % ('%d failure(s)' % len(FAILURES) if FAILURES else 'no failure'))
    method.end()
    return 1 if FAILURES else 0


if __name__ == '__main__':
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.exit(main())
