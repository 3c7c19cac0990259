# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark: the receiver's embedded registry (``--oci-layout``) vs Debian's distribution registry (``docker-registry``).

Both on 127.0.0.1, storage in one temporary directory on the same disk, measured in the same run, the order of
the two sides alternating each round.  The clients are the same for both: curl for blobs (one process per stream,
so the client is never the bottleneck of one side only), a ``requests`` session for manifests.

- push of one blob of ``--size-mib`` (POST a session, one streamed PUT with ``?digest=``; the registry hashes
  it and makes it visible) - both sides get the full body every round (a blob already stored is received and
  checked again, then dropped);
- 8 concurrent pushes of 8 different blobs of ``size / 8`` each (1 GiB in all by default);
- pull of the blob, one stream and 8 concurrent streams (``curl -o /dev/null``);
- ``--manifests`` GETs of a small manifest by tag on one keep-alive connection.

Ours pushes with htpasswd credentials (bcrypt; a verified password is cached), the peer without auth: the peer
gets the cheaper setting.  Prints MiB/s or requests/s and ``ratio = ours / peer`` (goals: pull >= 1.0,
push >= 0.8): the median of the per-round ratios with min-max and IQR (bench/_method.py: both registries on the
server CPU, curl and requests on the client CPU, the load average at start and end).
For ours also: the peak resident memory (VmHWM) after the small manifests and after the big blobs
(flat in the blob size), and the latency of ``/healthz`` (the event loop every webhook goes through) idle and
while the big blob is pushed and pulled.

    .venv/bin/python bench/registry.py                        # 1 GiB, 2 rounds
    .venv/bin/python bench/registry.py --size-mib 256 --rounds 1
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import typing as t
from pathlib import Path

import bcrypt
import requests

import _method
from l3metal_lab.ports import free_port
from l3metal_lab.registry import Registry
from l3metal_lab.services import Service

USER, PASSWORD = 'bench', 'bench-password'
MANIFEST = 'application/vnd.oci.image.manifest.v1+json'


def make_file(path: Path, size: int) -> str:
    """A file of random bytes; its sha256 digest."""
    hasher = hashlib.sha256()
    block = os.urandom(1 << 20)
    with open(path, 'wb') as handle:
        for index in range(size >> 20):
            data = hashlib.sha256(b'%d' % index).digest() + block[32:]  # every MiB different, cheap to make
            handle.write(data)
            hasher.update(data)
    return 'sha256:' + hasher.hexdigest()


class Side(t.NamedTuple):
    name: str
    url: str
    auth: tuple[str, str] | None
    pid: int


def curl_auth(side: Side) -> list[str]:
    return ['-u', '%s:%s' % side.auth] if side.auth else []


def start_upload(side: Side, repo: str) -> str:
    answer = requests.post('%s/v2/%s/blobs/uploads/' % (side.url, repo), auth=side.auth, timeout=30)
    assert answer.status_code == 202, (side.name, answer.status_code, answer.text)
    location = answer.headers['Location']
    return location if location.startswith('http') else side.url + location


def push_cmd(side: Side, repo: str, path: Path, digest: str) -> list[str]:
    location = start_upload(side, repo)
    separator = '&' if '?' in location else '?'
    return ['curl', '-sS', '-f', '-o', '/dev/null', '-X', 'PUT', '-H', 'Content-Type: application/octet-stream', '-T', str(path)] + \
        curl_auth(side) + [location + separator + 'digest=' + digest]


def pull_cmd(side: Side, repo: str, digest: str) -> list[str]:
    return ['curl', '-sS', '-f', '-o', '/dev/null', '%s/v2/%s/blobs/%s' % (side.url, repo, digest)]


def run_parallel(commands: list[list[str]]) -> float:
    """Seconds until every command has finished (all started at once)."""
    started = time.perf_counter()
    processes = [subprocess.Popen(command) for command in commands]
    codes = [process.wait() for process in processes]
    elapsed = time.perf_counter() - started
    assert codes == [0] * len(codes), codes
    return elapsed


def push_manifest(side: Side, repo: str, tag: str, layer_digest: str, layer_size: int, config_digest: str) -> None:
    raw = json.dumps({'schemaVersion': 2, 'mediaType': MANIFEST,
                      'config': {'mediaType': 'application/vnd.oci.empty.v1+json', 'digest': config_digest, 'size': 2},
                      'layers': [{'mediaType': 'application/vnd.oci.image.layer.v1.tar', 'digest': layer_digest, 'size': layer_size}]}).encode()
    answer = requests.put('%s/v2/%s/manifests/%s' % (side.url, repo, tag), data=raw, headers={'Content-Type': MANIFEST}, auth=side.auth, timeout=30)
    assert answer.status_code == 201, (side.name, answer.status_code, answer.text)


def manifest_gets(side: Side, repo: str, tag: str, count: int) -> float:
    with requests.Session() as session:
        session.get('%s/v2/%s/manifests/%s' % (side.url, repo, tag), headers={'Accept': MANIFEST}, timeout=30).raise_for_status()
        started = time.perf_counter()
        for _request in range(count):
            answer = session.get('%s/v2/%s/manifests/%s' % (side.url, repo, tag), headers={'Accept': MANIFEST}, timeout=30)
            assert answer.status_code == 200
        return count / (time.perf_counter() - started)


def peak_rss_mib(pid: int) -> tuple[float, float]:
    status = Path('/proc/%d/status' % pid).read_text()
    rss = int(re.search(r'VmRSS:\s+(\d+) kB', status).group(1)) / 1024  # type: ignore[union-attr]
    hwm = int(re.search(r'VmHWM:\s+(\d+) kB', status).group(1)) / 1024  # type: ignore[union-attr]
    return rss, hwm


class HealthProbe:
    """``GET /healthz`` every 20 ms on its own connection while something else runs: the latencies."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.latencies: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with requests.Session() as session:
            while not self._stop.is_set():
                started = time.perf_counter()
                session.get(self.url, timeout=30).raise_for_status()
                self.latencies.append(time.perf_counter() - started)
                self._stop.wait(0.02)

    def __enter__(self) -> HealthProbe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> str:
        values = sorted(self.latencies)
        if not values:
            return 'no samples'
        p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
        return 'p50 %.1f ms, p99 %.1f ms, max %.1f ms (%d samples)' % (statistics.median(values) * 1000, p99 * 1000, values[-1] * 1000, len(values))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size-mib', type=int, default=1024, help='size of the big blob (default 1024)')
    parser.add_argument('--rounds', type=int, default=2, help='rounds, alternating which side goes first (default 2)')
    parser.add_argument('--manifests', type=int, default=1000, help='manifest GETs per side and round (default 1000)')
    parser.add_argument('--dir', help='where to put the blobs and both registries\' storage (default: a temporary directory in /var/tmp)')
    parser.add_argument('--no-pin', action='store_true', help='do not pin the servers and the client to different CPUs')
    args = parser.parse_args()
    method = _method.Method(enabled=not args.no_pin).start('registry')
    for tool in ('curl', 'docker-registry'):
        if not shutil.which(tool):
            print('%s is missing (make test installs it: tests/apt-packages.d/)' % tool)
            return 2

    work = Path(tempfile.mkdtemp(prefix='registry-bench-', dir=args.dir or '/var/tmp'))
    size = args.size_mib << 20
    part = size // 8
    receiver: Service | None = None
    peer: Registry | None = None
    try:
        big = work / 'big.bin'
        big_digest = make_file(big, size)
        parts = [(work / ('part-%d.bin' % i)) for i in range(8)]
        part_digests = [make_file(p, part) for p in parts]
        (work / 'htpasswd').write_text('%s:%s\n' % (USER, bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt()).decode()))
        port = free_port()
        receiver = Service('receiver', [sys.executable, '-m', 'l3metal_receiver', '--host', '127.0.0.1', '--port', str(port),
                                        '--data-dir', str(work / 'data'), '--media-dir', str(work / 'media'), '--log-level', 'WARNING',
                                        '--oci-layout', str(work / 'layout'), '--oci-htpasswd', str(work / 'htpasswd')],
                           work / 'receiver.log', ready_url='http://127.0.0.1:%d/healthz' % port,
                           env=dict(os.environ, PYTHONDONTWRITEBYTECODE='1'))
        receiver.start()
        peer = Registry(work / 'peer').start()
        sides = [Side('ours', 'http://127.0.0.1:%d' % port, (USER, PASSWORD), receiver.process.pid if receiver.process else 0),
                 Side('peer', peer.url, None, 0)]
        ours = sides[0]
        for service in (receiver, peer.service):
            if service is not None and service.process is not None:
                method.pin_server(service.process.pid)
        method.pin_client()
        config_digest = 'sha256:' + hashlib.sha256(b'{}').hexdigest()
        for side in sides:  # warm-up: small blobs, the manifest, the bcrypt cache
            data = b'{}'
            answer = requests.put(start_upload(side, 'bench/small') + ('&' if '?' in start_upload(side, 'bench/small') else '?') +
                                  'digest=' + config_digest, data=data, auth=side.auth, timeout=30)
            assert answer.status_code == 201, answer.text
            run_parallel([push_cmd(side, 'bench/small', parts[0], part_digests[0])])
            push_manifest(side, 'bench/small', 'v1', part_digests[0], part, config_digest)
        rss_small = peak_rss_mib(ours.pid)

        results: dict[str, dict[str, list[float]]] = {}

        def record(test: str, side: Side, value: float) -> None:
            results.setdefault(test, {}).setdefault(side.name, []).append(value)

        probes: list[HealthProbe] = []
        with HealthProbe(ours.url + '/healthz') as idle:
            time.sleep(2)
        for round_index in range(args.rounds):
            order = _method.order(round_index, sides)
            for side in order:
                probe = HealthProbe(ours.url + '/healthz') if side is ours else None
                if probe:
                    probe.__enter__()
                elapsed = run_parallel([push_cmd(side, 'bench/big', big, big_digest)])
                record('push %d MiB, 1 stream (MiB/s)' % args.size_mib, side, args.size_mib / elapsed)
                elapsed = run_parallel([pull_cmd(side, 'bench/big', big_digest)])
                record('pull %d MiB, 1 stream (MiB/s)' % args.size_mib, side, args.size_mib / elapsed)
                if probe:
                    probe.__exit__()
                    probes.append(probe)
                elapsed = run_parallel([push_cmd(side, 'bench/parts', p, d) for p, d in zip(parts, part_digests, strict=True)])
                record('push 8 x %d MiB, 8 concurrent (MiB/s)' % (args.size_mib // 8), side, args.size_mib / elapsed)
                elapsed = run_parallel([pull_cmd(side, 'bench/big', big_digest) for _stream in range(8)])
                record('pull %d MiB, 8 concurrent (MiB/s)' % args.size_mib, side, 8 * args.size_mib / elapsed)
                record('%d manifest GETs (requests/s)' % args.manifests, side, manifest_gets(side, 'bench/small', 'v1', args.manifests))
        rss_big = peak_rss_mib(ours.pid)

        print('embedded registry (ours) vs distribution %s (peer), %d round(s), same disk (%s)' % (
            (subprocess.run(['docker-registry', '--version'], capture_output=True, text=True, check=False).stdout.split() or ['?'])[-1],
            args.rounds, work))
        for test, by_side in results.items():
            mine, theirs = statistics.median(by_side['ours']), statistics.median(by_side['peer'])
            print('  %-40s ours %8.1f  peer %8.1f   (rounds: ours %s, peer %s)'
                  % (test, mine, theirs, ' '.join('%.0f' % v for v in by_side['ours']), ' '.join('%.0f' % v for v in by_side['peer'])))
            print('    ' + _method.ratio_line('ours / peer', by_side['ours'], by_side['peer']))
        print('  ours resident memory: after small blobs %.0f MiB (peak %.0f), after the %d MiB blobs %.0f MiB (peak %.0f)'
              % (rss_small[0], rss_small[1], args.size_mib, rss_big[0], rss_big[1]))
        print('  /healthz latency idle: %s' % idle.summary())
        for index, probe in enumerate(probes):
            print('  /healthz latency during the %d MiB push + pull (round %d): %s' % (args.size_mib, index + 1, probe.summary()))
        method.end()
        return 0
    finally:
        if receiver is not None:
            receiver.stop()
        if peer is not None:
            peer.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
