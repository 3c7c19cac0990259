# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark: media downloads from the receiver vs nginx (Debian nginx-light) on the same file, in one run.

A 1 GiB file (the size of a maintenance ISO) in one directory, served by the receiver
(``/media/``, one process, sendfile) and by nginx (``sendfile on``) twice: with the package's
``worker_processes auto`` and with one worker (one process, like the receiver).  The bench method of
``bench/_method.py``: the servers pinned to one CPU and the clients (curl, wrk: C programs, the same for every server)
to another (no pinning on a one-CPU machine, or with ``--no-pin``).  Measured, rotating the order each round:

- one whole-file download (curl, as a BMC fetching an ISO at once);
- 8 and 50 concurrent whole-file downloads (wrk, many BMCs at once);
- 1 MiB and 64 KiB Range requests in order on one keep-alive connection (a BMC reading a virtual CD block by block);
- Range requests of 4 MiB at random offsets, 8 connections (wrk);
- the same file as a blob of the receiver's embedded registry (``/v2/bench/file/blobs/<digest>``, open pull, the file
  hard-linked into its OCI layout) against the same file from nginx: one whole download (curl, as skopeo or podman
  pulls a layer), 8 concurrent, and 1 MiB ranges in order;
- in the Range patterns, also the floor of the stack (``bench/_media_floor.py``: a minimal asyncio server that
  finds the Range with one regular expression and sends as the receiver does, nothing else): ``ratio = ours / floor``
  tells the receiver's own per-request cost from what Python and asyncio cost, ``floor / nginx`` how far the stack
  itself is from nginx.  ``--floor-stacks asyncio,threads,uvloop`` adds the floor on a thread per blocking connection
  and on uvloop's event loop (``pip install uvloop``, not a dependency): whether another way of serving from Python
  would raise the floor.

Prints, per access pattern, the median MiB/s of each server, ``ratio = ours / nginx`` as the median of the per-round
ratios with its spread (min-max, IQR) for both nginx settings (goal >= 1.0), the CPU time each server and the client
spent per GiB sent, how busy the client's CPU was (near 100 %: the client's own cost of reading sets the figure, not the
server), and the load average before and after (the
machine may be shared).  The receiver's resident memory (VmHWM, the peak) is read after serving a 64 MiB file and again
after all the big-file downloads: it does not grow with the file size.

    .venv/bin/python bench/receiver_media.py               # 1 GiB, 3 rounds
    .venv/bin/python bench/receiver_media.py --size-mib 256 --rounds 1 --duration 3
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import typing as t
from pathlib import Path

import _method
from l3metal_lab.nginx import Nginx
from l3metal_lab.ports import free_port
from l3metal_lab.services import Service

RANGE_LUA = r'''
local size = tonumber(os.getenv("BENCH_SIZE"))
local chunk = tonumber(os.getenv("BENCH_CHUNK"))
local path = os.getenv("BENCH_PATH")
local sequential = os.getenv("BENCH_SEQUENTIAL") == "1"
local offset = 0
math.randomseed(os.time())
function request()
    local start
    if sequential then
        start = offset
        offset = (offset + chunk) % (size - chunk)
    else
        start = math.random(0, math.floor((size - chunk) / 4096)) * 4096
    end
    return wrk.format("GET", path, {["Range"] = "bytes=" .. start .. "-" .. (start + chunk - 1)})
end
'''


def make_file(path: Path, size: int) -> None:
    block = os.urandom(1 << 20)
    with open(path, 'wb') as handle:
        for _block in range(size >> 20):
            handle.write(block)
    # read it once so both servers start from the page cache
    with open(path, 'rb') as handle:
        while handle.read(8 << 20):
            pass


def mib_per_s(value: str) -> float:
    number, unit = re.match(r'([0-9.]+)([KMG]?B)', value).groups()  # type: ignore[union-attr]
    return float(number) * {'B': 1 / (1 << 20), 'KB': 1 / 1024, 'MB': 1.0, 'GB': 1024.0}[unit]


def floored(name: str) -> bool:
    """Whether the access pattern ``name`` is measured on the floor server too: the Range patterns (it answers nothing
    else)."""
    return 'ranges' in name


FLOOR_STACKS = ('asyncio', 'threads', 'uvloop')


def floor_kind(stack: str) -> str:
    """The name of the floor server on ``stack`` in the figures: ``floor`` (asyncio, the receiver's stack),
    ``floor-threads``, ``floor-uvloop``."""
    return 'floor' if stack == 'asyncio' else 'floor-' + stack


def blob_of(path: Path, layout: Path) -> str:
    """Hard-link ``path`` into the OCI layout directory ``layout`` as a blob (the receiver creates the rest); its digest."""
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        while True:
            chunk = handle.read(4 << 20)
            if not chunk:
                break
            digest.update(chunk)
    blobs = layout / 'blobs' / 'sha256'
    blobs.mkdir(parents=True)
    os.link(path, blobs / digest.hexdigest())
    return 'sha256:' + digest.hexdigest()


def wrk(url: str, connections: int, duration: float, script: Path | None = None, env: dict[str, str] | None = None) -> float:
    argv = ['wrk', '-t%d' % min(connections, 2), '-c%d' % connections, '-d%gs' % duration, '--timeout', '60s']
    if script:
        argv += ['-s', str(script)]
    out = subprocess.run(argv + [url], capture_output=True, text=True, check=True, env=dict(os.environ, **(env or {}))).stdout
    errors = re.search(r'Non-2xx or 3xx responses: (\d+)', out)
    if errors:
        raise RuntimeError('%s answered %s errors:\n%s' % (url, errors.group(1), out))
    return mib_per_s(re.search(r'Transfer/sec:\s+(\S+)', out).group(1))  # type: ignore[union-attr]


def curl_once(url: str) -> float:
    out = subprocess.run(['curl', '-sS', '-o', '/dev/null', '-w', '%{speed_download} %{size_download}', url],
                         capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]) / (1 << 20)


def peak_rss_mib(pid: int) -> tuple[float, float]:
    status = Path('/proc/%d/status' % pid).read_text()
    rss = int(re.search(r'VmRSS:\s+(\d+) kB', status).group(1)) / 1024  # type: ignore[union-attr]
    hwm = int(re.search(r'VmHWM:\s+(\d+) kB', status).group(1)) / 1024  # type: ignore[union-attr]
    return rss, hwm


# ------------------------------------------------------------------ CPU time (pinning and the ratios: bench/_method.py)

def cpu_seconds(pids: t.Iterable[int]) -> float:
    """User + system CPU time of ``pids`` (all their threads) so far."""
    total = 0
    for pid in pids:
        try:
            fields = Path('/proc/%d/stat' % pid).read_text().rsplit(')', 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf('SC_CLK_TCK')


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> int:  # pylint: disable=too-many-locals,too-many-statements
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size-mib', type=int, default=1024, help='size of the served file (default 1024)')
    parser.add_argument('--rounds', type=int, default=3, help='rounds, rotating which server goes first (default 3)')
    parser.add_argument('--duration', type=float, default=6.0, help='seconds per wrk run (default 6)')
    parser.add_argument('--only', help='run only the access patterns whose name contains this text')
    parser.add_argument('--no-pin', action='store_true', help='do not pin the servers and the client to different CPUs')
    parser.add_argument('--floor-stacks', default='asyncio',
                        help='the floor servers of the Range patterns, comma-separated: asyncio (default), threads, uvloop')
    args = parser.parse_args()
    stacks = [stack for stack in args.floor_stacks.split(',') if stack]
    if not stacks or set(stacks) - set(FLOOR_STACKS):
        parser.error('--floor-stacks: %r: comma-separated, of %s' % (args.floor_stacks, ', '.join(FLOOR_STACKS)))
    if 'uvloop' in stacks and importlib.util.find_spec('uvloop') is None:
        print('--floor-stacks uvloop needs uvloop in this virtualenv: %s -m pip install uvloop (not a dependency of the collection)'
              % sys.executable)
        return 2
    for tool in ('wrk', 'curl', 'nginx'):
        if not shutil.which(tool) and not (tool == 'nginx' and os.path.exists('/usr/sbin/nginx')):
            print('%s is missing (make test installs it: tests/apt-packages.d/receiver.txt)' % tool)
            return 2

    method = _method.Method(enabled=not args.no_pin).start('receiver_media')
    allowed = os.sched_getaffinity(0)
    work = Path(tempfile.mkdtemp(prefix='receiver-media-bench-'))
    media = work / 'media'
    media.mkdir()
    size = args.size_mib << 20
    receiver: Service | None = None
    nginx: Nginx | None = None
    nginx_one: Nginx | None = None
    floors: list[Service] = []
    try:
        make_file(media / 'small.iso', 64 << 20)
        make_file(media / 'big.iso', size)
        digest = blob_of(media / 'big.iso', work / 'layout')
        port = free_port()
        receiver = Service('receiver', [sys.executable, '-m', 'l3metal_receiver', '--host', '127.0.0.1', '--port', str(port),
                                        '--data-dir', str(work / 'data'), '--media-dir', str(media), '--log-level', 'WARNING',
                                        '--oci-layout', str(work / 'layout')],
                           work / 'receiver.log', ready_url='http://127.0.0.1:%d/healthz' % port,
                           env=dict(os.environ, PYTHONDONTWRITEBYTECODE='1'))
        receiver.start()
        nginx = Nginx(media, work / 'nginx', workers=0).start()
        nginx_one = Nginx(media, work / 'nginx-one', workers=1).start()
        floor_urls = {}
        for stack in stacks:
            floor_port = free_port()
            floor = Service(floor_kind(stack), [sys.executable, str(Path(__file__).with_name('_media_floor.py')), str(floor_port),
                                                str(media / 'big.iso'), '--stack', stack],
                            work / ('%s.log' % floor_kind(stack)), port=floor_port)
            floors.append(floor)
            floor.start()
            floor_urls[floor_kind(stack)] = 'http://127.0.0.1:%d/big.iso' % floor_port
        pid = receiver.process.pid if receiver.process else 0
        servers = dict({'ours': receiver, 'nginx': nginx.service, 'nginx-1': nginx_one.service}, **{floor.name: floor for floor in floors})
        pids = {kind: _method.descendants(service.process.pid) for kind, service in servers.items() if service and service.process}
        for kind_pids in pids.values():
            method.pin_server(kind_pids[0])
        method.pin_client()  # curl and wrk inherit it
        urls = dict({'ours': 'http://127.0.0.1:%d/media/big.iso' % port, 'nginx': nginx.url + '/big.iso', 'nginx-1': nginx_one.url + '/big.iso'},
                    **floor_urls)
        blob_urls = dict(urls, ours='http://127.0.0.1:%d/v2/bench/file/blobs/%s' % (port, digest))
        kinds = list(urls)

        curl_once('http://127.0.0.1:%d/media/small.iso' % port)
        wrk('http://127.0.0.1:%d/media/small.iso' % port, 8, 2)
        rss_small = peak_rss_mib(pid)

        script = work / 'range.lua'
        script.write_text(RANGE_LUA)

        def ranges(chunk: int, connections: int, sequential: bool) -> t.Callable[[str], float]:
            return lambda url: wrk(url, connections, args.duration, script, {
                'BENCH_SIZE': str(size), 'BENCH_CHUNK': str(chunk), 'BENCH_PATH': '/' + url.split('/', 3)[3],
                'BENCH_SEQUENTIAL': '1' if sequential else '0'})

        scenarios: dict[str, t.Callable[[str], float]] = {
            'one whole-file download (curl)': curl_once,
            '8 concurrent whole-file downloads': lambda url: wrk(url, 8, args.duration),
            '50 concurrent whole-file downloads': lambda url: wrk(url, 50, args.duration),
            '1 MiB ranges in order, 1 connection': ranges(1 << 20, 1, True),
            '64 KiB ranges in order, 1 connection': ranges(64 << 10, 1, True),
            '4 MiB ranges at random offsets, 8 connections': ranges(4 << 20, 8, False),
            'blob: one whole download (curl)': curl_once,
            'blob: 8 concurrent whole downloads': lambda url: wrk(url, 8, args.duration),
            'blob: 1 MiB ranges in order, 1 connection': ranges(1 << 20, 1, True),
        }
        if args.only:
            scenarios = {name: measure for name, measure in scenarios.items() if args.only in name}
        rates: dict[str, dict[str, list[float]]] = {name: {kind: [] for kind in kinds} for name in scenarios}
        # CPU seconds per GiB sent: the server's, and the client's (curl or wrk)
        server_cpu: dict[str, dict[str, list[float]]] = {name: {kind: [] for kind in kinds} for name in scenarios}
        client_cpu: dict[str, dict[str, list[float]]] = {name: {kind: [] for kind in kinds} for name in scenarios}
        # the client's CPU seconds per second of the run: near 1.0, its CPU is the bottleneck
        client_busy: dict[str, dict[str, list[float]]] = {name: {kind: [] for kind in kinds} for name in scenarios}
        for round_ in range(args.rounds):
            order = kinds[round_ % len(kinds):] + kinds[:round_ % len(kinds)]
            for name, measure in scenarios.items():
                for kind in order:
                    if kind.startswith('floor') and not floored(name):
                        continue
                    server_before, client_before, started = cpu_seconds(pids[kind]), children_cpu_seconds(), time.monotonic()
                    rate = measure((blob_urls if name.startswith('blob:') else urls)[kind])
                    elapsed = time.monotonic() - started
                    gib = rate * elapsed / 1024
                    rates[name][kind].append(rate)
                    server_cpu[name][kind].append((cpu_seconds(pids[kind]) - server_before) / gib if gib else 0.0)
                    client_cpu[name][kind].append((children_cpu_seconds() - client_before) / gib if gib else 0.0)
                    client_busy[name][kind].append((children_cpu_seconds() - client_before) / elapsed)
            print('round %d done (load average %s)' % (round_ + 1, _method.load_average()), flush=True)
        rss_big = peak_rss_mib(pid)
    finally:
        os.sched_setaffinity(0, allowed)
        if receiver is not None:
            receiver.stop()
        for server in (nginx, nginx_one):
            if server is not None:
                server.stop()
        for floor in floors:
            floor.stop()
        shutil.rmtree(work, ignore_errors=True)

    print()
    print('media throughput, %d MiB file, %d rounds, %g s per wrk run (os.cpu_count()=%s; %s)'
          % (args.size_mib, args.rounds, args.duration, os.cpu_count(), method.cpus.note))
    print('  median MiB/s; ratio = median of the per-round ratios; CPU s per GiB sent (server / client)')
    ok = True
    for name, by_kind in rates.items():
        mid = {kind: statistics.median(values) for kind, values in by_kind.items() if values}
        cpu = {kind: '%.2f/%.2f' % (statistics.median(server_cpu[name][kind]), statistics.median(client_cpu[name][kind])) for kind in kinds
               if server_cpu[name][kind]}
        print('  %-46s ours %6.0f  nginx %6.0f (1 worker %6.0f)  CPU ours %s nginx %s nginx-1 %s'
              % (name, mid['ours'], mid['nginx'], mid['nginx-1'], cpu['ours'], cpu['nginx'], cpu['nginx-1']))
        busy = ['%s %.0f %%' % (kind, 100 * statistics.median(client_busy[name][kind])) for kind in kinds if client_busy[name][kind]]
        print('    client CPU busy (median): %s' % ', '.join(busy))
        print('    ' + _method.ratio_line('ours / nginx', by_kind['ours'], by_kind['nginx']))
        print('    ' + _method.ratio_line('ours / nginx 1 worker', by_kind['ours'], by_kind['nginx-1']))
        for kind in (floor_kind(stack) for stack in stacks):
            if not by_kind[kind]:
                continue
            floor_cpu = '%.2f/%.2f' % (statistics.median(server_cpu[name][kind]), statistics.median(client_cpu[name][kind]))
            print('    %s %.0f MiB/s, CPU %s: %s; %s' % (
                'floor of the stack' if kind == 'floor' else kind, statistics.median(by_kind[kind]), floor_cpu,
                _method.ratio_line('ours / ' + kind, by_kind['ours'], by_kind[kind]),
                _method.ratio_line(kind + ' / nginx', by_kind[kind], by_kind['nginx'])))
    print('  receiver memory: after a 64 MiB file RSS %.0f MiB (peak %.0f); after the %d MiB runs RSS %.0f MiB (peak %.0f): '
          'peak ratio %.2f' % (rss_small[0], rss_small[1], args.size_mib, rss_big[0], rss_big[1], rss_big[1] / rss_small[1]))
    if rss_big[1] > rss_small[1] + 32:
        print('  RSS grew with the file size')
        ok = False
    method.end()
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
