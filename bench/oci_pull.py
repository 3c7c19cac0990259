# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark: streamed pull+unpack of a rootfs artifact vs. tarfile's own decompression and vs. the two-step baseline, in one run.

Generates a rootfs-like tree (many small files, some large ones; ~2.5:1 gzip ratio, like a distro
rootfs), packs it with GNU tar + gzip, pushes it to a local distribution registry (Debian
``docker-registry``), then measures each side in child processes, in a different order each round:

- ``ours``:     ``pull_and_unpack`` (HTTP stream -> sha256 -> gunzip in a thread of its own (decompress.py)
                -> tarfile in stream mode ``r|`` -> the policy and writer of unpack.py), one pass;
- ``tarfile``:  the same pull, verified stream, policy and writer, but tarfile decompresses itself
                (``r|*``, in the thread that parses and writes): what keeps decompress.py's thread;
- ``baseline``: oras-py downloads the blob to a file, then ``tar xzf`` unpacks it (two steps, as the
                maintenance OS would without our code).

Until issue 11 ``ours`` read the stream with a tar parser of its own (tar.py); docs/oci.md has the
figures that replaced it with tarfile (commit "unpack: a tarfile-based reader beside tar.py's" has
the bench that measured both).

Wall time, CPU time and peak RSS are measured per child (GNU time).  It prints every round, the
median and the spread (min-max) of each side, ``ratio = ours / tarfile`` and ``ratio = ours / baseline``
(of the medians, and per round), the load average before and after each round (the machine may be
shared), and the file system type of the target; then repeats ``ours`` on an artifact 1/8 the size to
show that peak RSS does not grow with the artifact.  Every tree is checked to hold the same
files and bytes.  Everything is written below a temporary directory (``--workdir``, default under /tmp)
that is removed at the end.

Every side unpacks (and the baseline downloads) into ``--target-dir``: by default a tmpfs (/dev/shm)
when it has room; pass an ext4 directory (``--target-dir /tmp`` here, or a loop-mounted ext4 image) to
include the file system.  ``os.sync()`` runs before each measured child, so that no side pays for the
previous side's writeback, and before each round the bench waits until the target's disk is idle
(``/proc/diskstats``): deleting the previous round's trees (with ``discard``, as here) otherwise slows
whichever side runs first.
The bench method (bench/_method.py): by default the registry runs on the server CPU and the measured children on the
client CPU; ratios are medians of per-round ratios with min-max and IQR.
``--cpus 1`` pins the measured children with taskset (less noise from other load, no parallelism:
every thread of a side shares that CPU); ``--registry-cpus 0`` keeps the registry off that CPU.

    .venv/bin/python bench/oci_pull.py                                  # 1 GiB tree, 3 rounds, tmpfs
    .venv/bin/python bench/oci_pull.py --rounds 5 --target-dir /tmp     # onto the disk (ext4 here)
    .venv/bin/python bench/oci_pull.py --size-mib 256 --rounds 3 --sides ours,baseline
    make bench BENCH=oci_pull BENCH_ARGS='--size-mib 256'
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _method


WORDS = [b'usr', b'lib', b'share', b'locale', b'config', b'error', b'return', b'struct', b'static', b'const', b'void', b'int',
         b'printf', b'malloc', b'free', b'GLIBC_2.34', b'x86_64', b'linux', b'debian', b'systemd', b'\x00\x00\x00\x00', b'\x7fELF']


def make_pool(rng: random.Random, size: int = 16 << 20) -> bytes:
    """Bytes that gzip about 2.5:1: a third random, the rest text-like runs (ELF binaries and text mixed)."""
    parts = []
    total = 0
    while total < size:
        if rng.random() < 0.33:
            chunk = rng.randbytes(rng.randint(256, 8192))
        else:
            chunk = b' '.join(rng.choice(WORDS) for _word in range(rng.randint(64, 2048)))
        parts.append(chunk)
        total += len(chunk)
    return b''.join(parts)[:size]


def make_tree(root: Path, size: int, seed: int = 1) -> tuple[int, int]:
    """About ``size`` bytes: 60 % in small files (0.5-64 KiB) in nested dirs, 40 % in large files (4-48 MiB)."""
    rng = random.Random(seed)
    pool = make_pool(rng)
    files = written = 0

    def blob(length: int) -> bytes:
        start = rng.randrange(0, len(pool) - min(length, len(pool) - 1))
        data = pool[start:start + length]
        while len(data) < length:
            data += pool[:length - len(data)]
        return data

    small_budget = int(size * 0.6)
    while written < small_budget:
        directory = root / 'usr' / rng.choice(['lib', 'share', 'bin', 'include']) / ('pkg%03d' % rng.randrange(400))
        directory.mkdir(parents=True, exist_ok=True)
        length = int(rng.lognormvariate(8.5, 1.3)) % (64 * 1024) + 512
        path = directory / ('f%06d' % files)
        path.write_bytes(blob(length))
        if files % 7 == 0:
            path.chmod(0o755)
        if files % 50 == 0:
            (directory / ('l%06d' % files)).symlink_to(path.name)
        files += 1
        written += length
    large = root / 'usr' / 'lib' / 'firmware'
    large.mkdir(parents=True, exist_ok=True)
    while written < size:
        length = min(rng.randint(4, 48) << 20, size - written + 4096)
        with open(large / ('big%03d.bin' % files), 'wb') as handle:
            remaining = length
            while remaining:
                piece = blob(min(remaining, 4 << 20))
                handle.write(piece)
                remaining -= len(piece)
        files += 1
        written += length
    return files, written


def pack(tree: Path, archive: Path) -> None:
    subprocess.run(['tar', '-C', str(tree), '--numeric-owner', '-cf', str(archive.with_suffix('')), '.'], check=True)
    subprocess.run(['gzip', '-6', '-n', str(archive.with_suffix(''))], check=True)


def run_child(argv: list[str], env: dict[str, str] | None = None, cpus: str | None = None) -> tuple[float, int, float]:
    """Run a child under GNU time; return (wall seconds, peak RSS in MiB, CPU seconds user+system) of
    that command alone.

    Not ``wait4`` on our own child: Linux folds the parent's RSS, copied at fork, into the child's
    ``ru_maxrss``, which would charge this script's memory to every side.
    """
    report = tempfile.NamedTemporaryFile(prefix='oci-bench-rss-', suffix='.txt', delete=False)
    report.close()
    try:
        pin = ['taskset', '-c', cpus] if cpus else []
        os.sync()  # the previous side's dirty pages are written back now, not during this side's run
        start = time.monotonic()
        process = subprocess.run(pin + ['/usr/bin/time', '-q', '-f', '%M %U %S', '-o', report.name] + argv, env=env, check=False)
        elapsed = time.monotonic() - start
        if process.returncode != 0:
            raise SystemExit('%s failed with exit code %d' % (argv[:3], process.returncode))
        rss, user, system = Path(report.name).read_text().split()[-3:]
        return elapsed, int(rss) // 1024, float(user) + float(system)
    finally:
        os.unlink(report.name)


def default_target() -> str | None:
    """tmpfs when there is room: on a shared virtual disk, kernel time per created file varies by 5x from
    run to run and drowns the difference between the two pipelines."""
    try:
        usage = shutil.disk_usage('/dev/shm')
    except OSError:
        return None
    return '/dev/shm' if usage.free > 4 << 30 and os.access('/dev/shm', os.W_OK) else None


OURS = '''
import sys
from l3metal_oci.pull import pull_and_unpack
r = pull_and_unpack(sys.argv[1], sys.argv[2], insecure=True)
print("ours: %d files, %d bytes, %s" % (r.stats.files, r.stats.bytes, r.layers[0].compression), file=sys.stderr)
'''

# The same pull_and_unpack with tarfile decompressing by itself (r|*): pull.py makes its extractor from
# pull.TarExtractor, so the download, verification, staging, policy and writer are the same code as ours.
TARFILE = '''
import sys
from l3metal_oci import pull, unpack
from l3metal_oci.decompress import CHUNK, Prefixed, compression_of

class TarfileDecompresses(unpack.TarExtractor):
    def tar_stream(self, fileobj):
        first = fileobj.read(CHUNK)
        compression = compression_of(first)
        if compression == 'zstd':  # tarfile reads zstd from Python 3.14 only
            return super().tar_stream(Prefixed(first, fileobj))
        return Prefixed(first, fileobj), 'r|*', None, compression

pull.TarExtractor = TarfileDecompresses
r = pull.pull_and_unpack(sys.argv[1], sys.argv[2], insecure=True)
'''

ORAS_DOWNLOAD = '''
import sys, oras.client, oras.container
ref, digest, out = sys.argv[1:4]
client = oras.client.OrasClient(hostname=ref.split("/")[0], insecure=True)
client.download_blob(client.get_container(ref), digest, out)
'''

SIDES = ('ours', 'tarfile', 'baseline')


def tree_summary(root: Path) -> tuple[int, int]:
    count = size = 0
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path) and name != '.oci-artifact.json':
                count += 1
                size += os.path.getsize(path)
    return count, size


def filesystem_of(path: Path) -> str:
    """The type of the file system holding ``path`` (from /proc/self/mountinfo: the longest mount point above it)."""
    best, kind = '', '?'
    real = os.path.realpath(path)
    with open('/proc/self/mountinfo', encoding='utf-8', errors='surrogateescape') as mountinfo:
        for line in mountinfo:
            fields = line.split(' ')
            point, fstype = fields[4], fields[fields.index('-') + 1]
            if (real == point or real.startswith(point.rstrip('/') + '/')) and len(point) >= len(best):
                best, kind = point, fstype
    return kind


def block_device_of(path: Path) -> str | None:
    """The /proc/diskstats name of the device holding ``path`` (``vda``, ``sda1``), or None (tmpfs, overlay...)."""
    best, source = '', None
    real = os.path.realpath(path)
    with open('/proc/self/mountinfo', encoding='utf-8', errors='surrogateescape') as mountinfo:
        for line in mountinfo:
            fields = line.split(' ')
            point, device = fields[4], fields[fields.index('-') + 2]
            if (real == point or real.startswith(point.rstrip('/') + '/')) and len(point) >= len(best):
                best, source = point, device
    return os.path.basename(os.path.realpath(source)) if source and source.startswith('/dev/') else None


def disk_activity(device: str) -> tuple[int, ...]:
    """(I/Os in flight, sectors written, sectors discarded) of ``device``."""
    with open('/proc/diskstats', encoding='ascii') as stats:
        for line in stats:
            fields = line.split()
            if fields[2] == device:
                return int(fields[11]), int(fields[9]), int(fields[16]) if len(fields) > 16 else 0
    return (0, 0, 0)


def settle(target: Path, timeout: float = 30.0) -> float:
    """Write back, then wait until the target's disk has had no I/O in flight and nothing written or
    discarded for two seconds in a row (at most ``timeout``: other users of a shared disk may never
    let it rest); returns the seconds waited."""
    start = time.monotonic()
    os.sync()
    device = block_device_of(target)
    if device is None:
        return time.monotonic() - start
    quiet, last = 0, disk_activity(device)
    while quiet < 2 and time.monotonic() - start < timeout:
        time.sleep(1)
        now = disk_activity(device)
        quiet = quiet + 1 if now[0] == 0 and now[1:] == last[1:] else 0
        last = now
    return time.monotonic() - start


def load() -> str:
    return '%.2f %.2f %.2f' % os.getloadavg()


def spread(values: list[float]) -> str:
    return 'median %.2f s, min %.2f, max %.2f' % (statistics.median(values), min(values), max(values))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size-mib', type=int, default=1024, help='uncompressed size of the generated tree (default 1024)')
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--sides', default=','.join(SIDES), help='comma-separated subset of %s (default: all)' % ', '.join(SIDES))
    parser.add_argument('--workdir', help='where to put the data (default: a new directory under /tmp, removed at the end)')
    parser.add_argument('--keep', action='store_true', help='keep the work directory')
    parser.add_argument('--target-dir', default=default_target(),
                        help='file system to unpack into (and for the baseline\'s downloaded blob); default /dev/shm when it has '
                             '4 GiB free, else the work directory. Pass a disk path to include the file system')
    parser.add_argument('--cpus', help='pin the measured children to these CPUs (taskset -c), e.g. 1')
    parser.add_argument('--registry-cpus', help='pin the registry (every thread) to these CPUs, e.g. 0')
    parser.add_argument('--warmup', type=int, default=1, help='unmeasured runs of the first side before round 1 (default 1)')
    parser.add_argument('--no-flat-check', action='store_true', help='skip the small-artifact RSS comparison')
    parser.add_argument('--no-pin', action='store_true', help='no default pinning (the bench method pins the registry and the children apart)')
    args = parser.parse_args()
    method = _method.Method(enabled=not args.no_pin).start('oci_pull')
    if args.cpus is None and method.client:
        args.cpus = _method.cpu_list(method.client)
    if args.registry_cpus is None and method.server:
        args.registry_cpus = _method.cpu_list(method.server)
    sides = [side.strip() for side in args.sides.split(',') if side.strip()]
    unknown = sorted(set(sides) - set(SIDES))
    if unknown or not sides:
        parser.error('--sides: unknown %s (known: %s)' % (', '.join(unknown) or 'nothing given', ', '.join(SIDES)))

    env = dict(os.environ)
    from l3metal_lab.registry import Registry
    from l3metal_oci.client import fetch_manifest
    from l3metal_oci.push import PushFile, push_artifact

    work = Path(args.workdir or tempfile.mkdtemp(prefix='oci-bench-', dir='/tmp'))
    work.mkdir(parents=True, exist_ok=True)
    target = Path(tempfile.mkdtemp(prefix='oci-bench-out-', dir=args.target_dir)) if args.target_dir else work
    print('Python %s; unpacking into %s (%s); %d CPUs%s; load average %s'
          % (sys.version.split()[0], target, filesystem_of(target), os.cpu_count() or 0, ', children pinned to CPU %s' % args.cpus if args.cpus else '',
             load()))
    registry = None
    try:
        registry = Registry(work / 'registry').start()
        if args.registry_cpus and registry.service and registry.service.process:
            cpus = {int(cpu) for cpu in args.registry_cpus.split(',')}
            for task in os.listdir('/proc/%d/task' % registry.service.process.pid):  # Go threads inherit it from here on
                os.sched_setaffinity(int(task), cpus)
            print('registry pinned to CPU %s' % args.registry_cpus)
        refs = {}
        sizes = [('full', args.size_mib)] + ([] if args.no_flat_check else [('small', max(16, args.size_mib // 8))])
        for label, mib in sizes:
            tree = work / ('tree-' + label)
            t0 = time.monotonic()
            files, written = make_tree(tree, mib << 20)
            archive = work / ('rootfs-%s.tar.gz' % label)
            pack(tree, archive)
            shutil.rmtree(tree)
            ref = '%s/os-images/bench-%s:1' % (registry.host, label)
            push_artifact(ref, [PushFile(str(archive))], insecure=True)
            refs[label] = ref
            print('%s: %d files, %.0f MiB unpacked, %.0f MiB tar.gz (generated and pushed in %.0f s)'
                  % (label, files, written / 2**20, archive.stat().st_size / 2**20, time.monotonic() - t0))
            archive.unlink()

        ref = refs['full']
        layer = fetch_manifest(ref, insecure=True).layers[0]

        def measure(side: str, reference: str, out: Path) -> tuple[float, int, float]:
            if side == 'ours':
                return run_child([sys.executable, '-c', OURS, reference, str(out)], env, args.cpus)
            if side == 'tarfile':
                return run_child([sys.executable, '-c', TARFILE, reference, str(out)], env, args.cpus)
            blob = target / 'baseline.tar.gz'
            download = run_child([sys.executable, '-c', ORAS_DOWNLOAD, reference, layer.digest, str(blob)], env, args.cpus)
            out.mkdir()
            unpack = run_child(['tar', '-C', str(out), '-xzf', str(blob)], None, args.cpus)
            blob.unlink()
            return download[0] + unpack[0], max(download[1], unpack[1]), download[2] + unpack[2]

        for number in range(args.warmup):
            out = target / ('out-warmup-%d' % number)
            print('warm-up (not counted): %s %.2f s' % (sides[0], measure(sides[0], ref, out)[0]))
            shutil.rmtree(out)
        results: dict[str, list[tuple[float, int, float]]] = {side: [] for side in sides}
        by_position: dict[int, list[float]] = {}
        for round_no in range(args.rounds):
            # Every other round reversed, and rotated every two rounds: each side runs early and late, before and after each other.
            order = _method.order(round_no, sides)
            waited = settle(target)
            before = load()
            for side in order:
                results[side].append(measure(side, ref, target / ('out-%s-%d' % (side, round_no))))
            trees = {side: tree_summary(target / ('out-%s-%d' % (side, round_no))) for side in sides}
            same = len(set(trees.values())) == 1
            print('round %d (order %s; disk idle after %.0f s; load %s -> %s): %s; trees identical in count and bytes: %s'
                  % (round_no + 1, ', '.join(order), waited, before, load(), ', '.join('%s %.2f s' % (side, results[side][-1][0]) for side in sides),
                     same))
            for position, side in enumerate(order):
                by_position.setdefault(position, []).append(results[side][-1][0])
            if not same:
                raise SystemExit('the sides unpacked different trees: %s' % trees)
            for side in sides:
                shutil.rmtree(target / ('out-%s-%d' % (side, round_no)))

        print()
        print('%d rounds, target %s (%s), load average now %s' % (args.rounds, target, filesystem_of(target), load()))
        for side in sides:
            walls = [wall for wall, _rss, _cpu in results[side]]
            cpus = [cpu for _wall, _rss, cpu in results[side]]
            print('  %-15s wall %s; CPU (user+system) %s; peak RSS %d MiB' % (side, spread(walls), spread(cpus),
                                                                              max(rss for _wall, rss, _cpu in results[side])))

        def ratio(a: str, b: str, label: str) -> None:
            if a in results and b in results:
                walls = _method.ratios([w for w, _r, _c in results[a]], [w for w, _r, _c in results[b]])
                cpu = statistics.median(c for _w, _r, c in results[a]) / statistics.median(c for _w, _r, c in results[b])
                print(_method.ratio_line(label, [w for w, _r, _c in results[a]], [w for w, _r, _c in results[b]],
                                         note='per round %s; CPU time (medians) %.2f' % (', '.join('%.2f' % value for value in walls), cpu)))

        positions = ', '.join('%d. median %.2f s' % (position + 1, statistics.median(values)) for position, values in sorted(by_position.items()))
        print('  by position in the round (whatever the side): %s' % positions)
        ratio('ours', 'tarfile', 'ours / tarfile decompressing itself (r|*)')
        ratio('ours', 'baseline', 'ours / baseline (oras-py download + tar xzf)')
        if 'small' in refs and 'ours' in results:
            out = target / 'out-small'
            small_rss = measure('ours', refs['small'], out)[1]
            shutil.rmtree(out)
            full_rss = max(rss for _wall, rss, _cpu in results['ours'])
            print('peak RSS of ours: %d MiB for %d MiB vs %d MiB for %d MiB: rss ratio = %.2f (flat ~ 1.0)'
                  % (full_rss, args.size_mib, small_rss, sizes[1][1], full_rss / max(small_rss, 1)))
        method.end()
    finally:
        if registry is not None:
            registry.stop()
        if target != work:
            shutil.rmtree(target, ignore_errors=True)
        if args.keep:
            print('kept', work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
