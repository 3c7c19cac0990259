# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark: streamed pull+unpack of a rootfs artifact vs. the two-step baseline, in the same run.

Generates a rootfs-like tree (many small files, some large ones; ~2.5:1 gzip ratio, like a distro
rootfs), packs it with GNU tar + gzip, pushes it to a local distribution registry (Debian
``docker-registry``), then measures, alternating the order each round:

- ours:     ``pull_and_unpack`` (HTTP stream -> sha256 -> gunzip -> tar members on disk, one pass);
- baseline: oras-py downloads the blob to a file, then ``tar xzf`` unpacks it (two steps, as the
  maintenance OS would without our code).

Each side runs in child processes; wall time and peak RSS (``wait4``) are measured per child. It
prints both and ``ratio = ours / baseline`` (goal <= 1.0), then repeats ours on an artifact 1/8 the
size to show that peak RSS does not grow with the artifact (``rss ratio`` ~ 1).  Everything is
written below a temporary directory (``--workdir``, default under /tmp) that is removed at the end.

Both sides unpack (and the baseline downloads) into ``--target-dir``: by default a tmpfs (/dev/shm)
when it has room, because on a shared virtual disk the kernel time per created file varies several
fold between runs, equally for both sides, and drowns the difference between the pipelines; pass
``--target-dir /tmp`` (or the disk you care about) to include the file system.

    .venv/bin/python bench/oci_pull.py                 # 1 GiB tree, 2 rounds
    .venv/bin/python bench/oci_pull.py --size-mib 256 --rounds 1
    .venv/bin/python bench/oci_pull.py --target-dir /tmp   # unpack onto the disk instead of tmpfs
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


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


def run_child(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, int, float]:
    """Run a child under GNU time; return (wall seconds, peak RSS in MiB, CPU seconds user+system) of
    that command alone.

    Not ``wait4`` on our own child: Linux folds the parent's RSS, copied at fork, into the child's
    ``ru_maxrss``, which would charge this script's memory to every side.
    """
    report = tempfile.NamedTemporaryFile(prefix='oci-bench-rss-', suffix='.txt', delete=False)
    report.close()
    try:
        start = time.monotonic()
        process = subprocess.run(['/usr/bin/time', '-q', '-f', '%M %U %S', '-o', report.name] + argv, env=env, check=False)
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

ORAS_DOWNLOAD = '''
import sys, oras.client, oras.container
ref, digest, out = sys.argv[1:4]
client = oras.client.OrasClient(hostname=ref.split("/")[0], insecure=True)
client.download_blob(client.get_container(ref), digest, out)
'''


def tree_summary(root: Path) -> tuple[int, int]:
    count = size = 0
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path) and name != '.oci-artifact.json':
                count += 1
                size += os.path.getsize(path)
    return count, size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--size-mib', type=int, default=1024, help='uncompressed size of the generated tree (default 1024)')
    parser.add_argument('--rounds', type=int, default=2)
    parser.add_argument('--workdir', help='where to put the data (default: a new directory under /tmp, removed at the end)')
    parser.add_argument('--keep', action='store_true', help='keep the work directory')
    parser.add_argument('--target-dir', default=default_target(),
                        help='file system to unpack into (and for the baseline\'s downloaded blob); default /dev/shm when it has '
                             '4 GiB free, else the work directory. Pass a disk path to include the file system')
    parser.add_argument('--no-flat-check', action='store_true', help='skip the small-artifact RSS comparison')
    args = parser.parse_args()

    env = dict(os.environ)
    from l3metal_lab.registry import Registry
    from l3metal_oci.client import fetch_manifest
    from l3metal_oci.push import PushFile, push_artifact

    work = Path(args.workdir or tempfile.mkdtemp(prefix='oci-bench-', dir='/tmp'))
    work.mkdir(parents=True, exist_ok=True)
    target = Path(tempfile.mkdtemp(prefix='oci-bench-out-', dir=args.target_dir)) if args.target_dir else work
    print('unpacking into %s (%s)' % (target, 'tmpfs' if str(target).startswith('/dev/shm') else 'the work directory\'s file system'))
    registry = None
    try:
        registry = Registry(work / 'registry').start()
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
        results: dict[str, list[tuple[float, int, float]]] = {'ours': [], 'download': [], 'tar': []}
        for round_no in range(args.rounds):
            order = ['ours', 'baseline'] if round_no % 2 == 0 else ['baseline', 'ours']
            for side in order:
                out = target / ('out-%s-%d' % (side, round_no))
                if side == 'ours':
                    results['ours'].append(run_child([sys.executable, '-c', OURS, ref, str(out)], env))
                else:
                    blob = target / 'baseline.tar.gz'
                    results['download'].append(run_child([sys.executable, '-c', ORAS_DOWNLOAD, ref, layer.digest, str(blob)], env))
                    out.mkdir()
                    results['tar'].append(run_child(['tar', '-C', str(out), '-xzf', str(blob)]))
                    blob.unlink()
            a, b = target / ('out-ours-%d' % round_no), target / ('out-baseline-%d' % round_no)
            same = tree_summary(a) == tree_summary(b)
            print('round %d: ours %.1f s; baseline %.1f s + %.1f s; trees identical in count and bytes: %s'
                  % (round_no + 1, results['ours'][-1][0], results['download'][-1][0], results['tar'][-1][0], same))
            if not same:
                raise SystemExit('the two sides unpacked different trees: %s vs %s' % (tree_summary(a), tree_summary(b)))
            shutil.rmtree(a)
            shutil.rmtree(b)

        ours = min(wall for wall, _rss, _cpu in results['ours'])
        baseline = min(d[0] + t[0] for d, t in zip(results['download'], results['tar'], strict=True))
        ours_cpu = min(cpu for _wall, _rss, cpu in results['ours'])
        base_cpu = min(d[2] + t[2] for d, t in zip(results['download'], results['tar'], strict=True))
        ours_rss = max(rss for _wall, rss, _cpu in results['ours'])
        base_rss = max(max(r[1] for r in results['download']), max(r[1] for r in results['tar']))
        print()
        print('wall time (best of %d): ours %.2f s, baseline (oras-py download + tar xzf) %.2f s' % (args.rounds, ours, baseline))
        print('CPU (user+system, best of %d): ours %.2f s, baseline %.2f s' % (args.rounds, ours_cpu, base_cpu))
        print('peak RSS: ours %d MiB, baseline %d MiB (oras-py %d MiB, tar %d MiB)'
              % (ours_rss, base_rss, max(r[1] for r in results['download']), max(r[1] for r in results['tar'])))
        print('ratio = ours / baseline = %.2f (goal <= 1.0)' % (ours / baseline))
        if 'small' in refs:
            out = target / 'out-small'
            _wall, small_rss, _cpu = run_child([sys.executable, '-c', OURS, refs['small'], str(out)], env)
            shutil.rmtree(out)
            print('peak RSS of ours: %d MiB for %d MiB vs %d MiB for %d MiB: rss ratio = %.2f (flat ~ 1.0)'
                  % (ours_rss, args.size_mib, small_rss, sizes[1][1], ours_rss / max(small_rss, 1)))
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
