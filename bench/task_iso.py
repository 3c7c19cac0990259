# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark: build the same task medium with task_iso's code path, xorriso and genisoimage.

    .venv/bin/python bench/task_iso.py [--repeat N]     (after `make layout`; or `make bench BENCH=task_iso`)

All three produce an ISO 9660 + Joliet + Rock Ridge image holding a recipe, the schema, user-data
and meta-data.  task_iso starts from the recipe in memory (validate, lay out, build, write the file
atomically); the external tools start from the same files already staged on disk, so their
numbers exclude writing the inputs.  Every run writes a new file, as each job gets its own medium.
"validate: false" skips the recipe validation; "ISO build only" is the in-memory image build alone (no
validation, no file). Both are for reference.  The bench method of bench/_method.py (docs/testing.md): no
server here, so this process (ours) and its children (the tools) run on the client CPU; ``--rounds``
rounds, the order of the sides alternating; each side's median per round; ``ratio = ours / genisoimage``
(genisoimage is the faster peer) is the median of the per-round ratios with min-max and IQR; the load
average at start and end.  Goal: ratio <= 0.25.
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _method
from ansible_collections.l3metal.provision.plugins.module_utils._task_media import build_media, collect_files, write_atomic

USER_DATA = '#cloud-config\nhostname: node01\nusers:\n  - name: ops\n    ssh_authorized_keys: [ssh-ed25519 AAAAC3Nza... ops]\n'
RECIPE = {
    'task_target': 'install-linux.target',
    'target_disk': '/dev/sda',
    'oci_url': 'registry.example.com/os-images/ubuntu-rootfs:22.04',
    'user_data': base64.b64encode(USER_DATA.encode()).decode(),
    'partition_layout': [
        {'size': '512M', 'type_guid': 'ef00', 'format': 'vfat', 'mountpoint': '/boot/efi'},
        {'size': '100%', 'type_guid': '8300', 'format': 'ext4', 'mountpoint': '/'},
    ],
    'callback': {'url': 'https://controller.example.com:8443', 'job_id': 'job-0001', 'token': 'x' * 43},
}
META = 'instance-id: job-0001\n'
OURS = 'task_iso (pycdlib, in-process)'
BUILD_ONLY = 'task_iso ISO build only'


def ours(dest: Path, validate: bool = True) -> None:
    files = collect_files(RECIPE, meta_data=META, validate=validate)
    write_atomic(str(dest), build_media(files).data)


def timed(func, out_dir: Path, repeat: int) -> list[float]:
    samples = []
    for index in range(repeat):
        dest = out_dir / ('%d.iso' % index)
        start = time.perf_counter()
        func(dest)
        samples.append((time.perf_counter() - start) * 1000)
    for path in out_dir.iterdir():
        path.unlink()
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--repeat', type=int, default=400, help='builds per side in all (default 400), spread over the rounds')
    parser.add_argument('--rounds', type=int, default=20, help='rounds, alternating the order of the sides (default 20)')
    parser.add_argument('--no-pin', action='store_true', help='do not pin this process and its children to a CPU')
    args = parser.parse_args()
    missing = [tool for tool in ('xorriso', 'genisoimage') if shutil.which(tool) is None]
    if missing:
        print('missing tools: %s (apt-get install xorriso genisoimage)' % ', '.join(missing))
        return 1
    method = _method.Method(enabled=not args.no_pin).start('task_iso (no server: every side runs on the client CPU)')
    method.pin_client()  # ours runs in this process, the tools are its children: all on the same CPU
    with tempfile.TemporaryDirectory(prefix='bench-task-iso-') as work:
        work_path = Path(work)
        staged = work_path / 'root'
        staged.mkdir()
        for media_file in collect_files(RECIPE, meta_data=META):
            (staged / media_file.name).write_bytes(media_file.data)
        devnull = subprocess.DEVNULL
        files = collect_files(RECIPE, meta_data=META)
        peers = {
            OURS: ours,
            'task_iso, validate: false': lambda dest: ours(dest, validate=False),
            BUILD_ONLY: lambda dest: build_media(files),
            'genisoimage': lambda dest: subprocess.run(['genisoimage', '-quiet', '-J', '-R', '-V', 'L3M_TASK', '-o', str(dest), str(staged)],
                                                       check=True, stdout=devnull, stderr=devnull),
            'xorriso -as mkisofs': lambda dest: subprocess.run(['xorriso', '-as', 'mkisofs', '-quiet', '-J', '-R', '-V', 'L3M_TASK', '-o', str(dest),
                                                                str(staged)], check=True, stdout=devnull, stderr=devnull),
        }
        out_dir = work_path / 'out'
        out_dir.mkdir()
        for func in peers.values():  # warm up caches and imports
            func(work_path / 'warm.iso')
        ours(work_path / 'ours.iso')
        samples: dict[str, list[float]] = {name: [] for name in peers}
        per_round: dict[str, list[float]] = {name: [] for name in peers}  # the median of each side in each round
        for round_index in range(args.rounds):
            for name in _method.order(round_index, list(peers)):
                values = timed(peers[name], out_dir, max(1, args.repeat // args.rounds))
                samples[name].extend(values)
                per_round[name].append(statistics.median(values))
        print('%-32s %10s %10s %8s   %s' % ('builder', 'median ms', 'p90 ms', 'runs', 'spread of the per-round medians (ms)'))
        for name, values in samples.items():
            values.sort()
            row = (name, statistics.median(values), values[int(len(values) * 0.9) - 1], len(values), _method.describe(_method.spread(per_round[name]), 3))
            print('%-32s %10.3f %10.3f %8d   %s' % row)
        print('image size: %d bytes (xorriso: %d)' % (os.path.getsize(work_path / 'ours.iso'), os.path.getsize(work_path / 'warm.iso')))
        print(_method.ratio_line('ours / genisoimage', per_round[OURS], per_round['genisoimage'], 3, 'goal <= 0.25; validate + build + write'))
        print(_method.ratio_line('ISO build only / genisoimage', per_round[BUILD_ONLY], per_round['genisoimage'], 3))
        print(_method.ratio_line('ours / xorriso', per_round[OURS], per_round['xorriso -as mkisofs'], 3))
    method.end()
    return 0


if __name__ == '__main__':
    sys.exit(main())
