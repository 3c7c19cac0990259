# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark: the provisioning media + boot sequence against N emulated BMCs.

For each N (default 1, 10, 50) one sushy-tools emulator (fake driver, TLS, basic auth, no power delay)
serves N systems with two virtual CDs each, and one ansible-playbook run drives every node through:

  ours:  redfish_virtual_media (maintenance ISO, CD 1), redfish_virtual_media (task ISO, CD 2),
         redfish_boot (boot_target cd, reset_type On, wait_power_state On)
  peer:  community.general.redfish_command VirtualMediaInsert twice, SetOneTimeBoot Cd, PowerOn,
         then ansible.builtin.uri GET of the system until PowerState is On (community.general cannot wait for it)

Requests per node are counted from the emulator's access log (what the BMC really served); wall time
is the whole ansible-playbook run.  The peer is community.general from the ``ansible`` package on
PyPI, installed with ``--no-deps`` into a throw-away virtualenv (``.cache/bench-peer``), never into the
project's requirements; ``--no-peer`` skips it.  Each side gets a fresh emulator per N.

Run from the repository root after ``make setup``::

    .venv/bin/python bench/redfish_flow.py [--nodes 1,10,50] [--forks 10] [--rounds 1] [--no-peer]

The bench method (bench/_method.py): the load average at start and end; ``--rounds`` rounds per N with ours and the
peer in alternating order and the median of the per-round time ratios with its spread.  Not pinned: ansible-playbook
with its forks is the client and sushy-tools the server, but each side starts its own emulator through the lab per N.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import typing as t
from pathlib import Path

import _method

ROOT = Path(__file__).resolve().parents[1]
# Run from the checkout (python bench/redfish_flow.py) or from the layout copy (make bench): the checkout is what owns .build and .cache.
IN_LAYOUT = ROOT.parents[1].name == 'ansible_collections'
CHECKOUT = ROOT.parents[3] if IN_LAYOUT else ROOT
BUILD = CHECKOUT / '.build'
LAYOUT = BUILD / 'ansible_collections' / 'l3metal' / 'provision'
PEER_VENV = CHECKOUT / '.cache' / 'bench-peer'
PEER_REQUIREMENT = 'ansible>=12,<13'


def prepare_layout() -> None:
    subprocess.run([sys.executable, str(CHECKOUT / 'tests' / 'tools' / 'layout.py'), str(BUILD), '--pth'], check=True, stdout=subprocess.DEVNULL)


def peer_collections() -> tuple[Path | None, str]:
    """Install the ``ansible`` package (community.general inside) into a throw-away venv; its collections dir."""
    site = list(PEER_VENV.glob('lib/python*/site-packages/ansible_collections'))
    if not (site and (site[0] / 'community' / 'general').is_dir()):
        print('installing %s (for community.general) into %s ...' % (PEER_REQUIREMENT, PEER_VENV), flush=True)
        try:
            subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(PEER_VENV)], check=True)
            subprocess.run([sys.executable, '-m', 'pip', '--python', str(PEER_VENV / 'bin' / 'python'), 'install', '-q', '--no-deps',
                            PEER_REQUIREMENT], check=True)
        except (subprocess.CalledProcessError, OSError) as exc:
            return None, 'could not install %s from PyPI (%s)' % (PEER_REQUIREMENT, exc)
        site = list(PEER_VENV.glob('lib/python*/site-packages/ansible_collections'))
    if not site or not (site[0] / 'community' / 'general').is_dir():
        return None, 'community.general not found in %s' % PEER_VENV
    manifest = site[0] / 'community' / 'general' / 'MANIFEST.json'
    version = ''
    if manifest.exists():
        import json
        version = json.loads(manifest.read_text())['collection_info']['version']
    return site[0], 'community.general %s' % version


def inventory(emulator: t.Any, path: Path) -> Path:
    lines = ['[nodes]']
    for index, system in enumerate(emulator.systems):
        lines.append('node-%03d system_id=%s ansible_connection=local' % (index + 1, system['uuid']))
    path.write_text('\n'.join(lines) + '\n')
    return path


def our_play(emulator: t.Any, urls: list[str]) -> list[dict[str, t.Any]]:
    defaults = emulator.module_defaults(system_id='{{ system_id }}', retries=3, timeout=30)
    return [{
        'name': 'l3metal.provision', 'hosts': 'nodes', 'gather_facts': False,
        'module_defaults': {'group/l3metal.provision.redfish': defaults},
        'tasks': [
            {'name': 'boot medium', 'l3metal.provision.redfish_virtual_media': {'image_url': urls[0], 'media_type': 'cd', 'slot': 1}},
            {'name': 'task medium', 'l3metal.provision.redfish_virtual_media': {'image_url': urls[1], 'media_type': 'cd', 'slot': 2}},
            {'name': 'boot', 'l3metal.provision.redfish_boot': {
                'boot_target': 'cd', 'reset_type': 'On', 'wait_power_state': 'On', 'wait_timeout': 120}},
        ],
    }]


def peer_play(emulator: t.Any, urls: list[str]) -> list[dict[str, t.Any]]:
    # community.general has no action group for its Redfish modules: the connection goes into each task.
    # Its modules prepend https:// to baseuri themselves.
    common = {'baseuri': emulator.url.split('://', 1)[1], 'username': emulator.auth[0], 'password': emulator.auth[1],
              'resource_id': '{{ system_id }}', 'timeout': 30, 'validate_certs': True, 'ca_path': emulator.ca_path}
    vmedia = {'media_types': ['CD', 'DVD'], 'inserted': True, 'write_protected': True}

    def task(name: str, module: str, **options: t.Any) -> dict[str, t.Any]:
        return {'name': name, 'community.general.' + module: dict(common, **options)}

    return [{
        'name': 'community.general', 'hosts': 'nodes', 'gather_facts': False,
        'tasks': [
            task('boot medium', 'redfish_command', category='Manager', command='VirtualMediaInsert', virtual_media=dict(vmedia, image_url=urls[0])),
            task('task medium', 'redfish_command', category='Manager', command='VirtualMediaInsert', virtual_media=dict(vmedia, image_url=urls[1])),
            task('one-time boot', 'redfish_command', category='Systems', command='SetOneTimeBoot', bootdevice='Cd'),
            task('power on', 'redfish_command', category='Systems', command='PowerOn'),
            # community.general can wait for a manager reset but not for a system's power state, and redfish_info reads
            # every system of the BMC; a single GET of the system per poll, as a user would write it, is the fair peer.
            {'name': 'wait for On', 'ansible.builtin.uri': {
                'url': emulator.url + '/redfish/v1/Systems/{{ system_id }}', 'url_username': emulator.auth[0],
                'url_password': emulator.auth[1], 'force_basic_auth': True, 'ca_path': emulator.ca_path, 'return_content': True},
             'register': 'system', 'retries': 120, 'delay': 1, 'until': "system.json.PowerState == 'On'"},
        ],
    }]


def run_side(label: str, nodes: int, forks: int, workdir: Path, play_for: t.Callable[..., list[dict[str, t.Any]]],
             collections: str) -> tuple[float, float]:
    from l3metal_lab.httpserver import FileServer
    from l3metal_lab.playbook import run_playbook
    from l3metal_lab.sushy import SushyEmulator

    side_dir = workdir / ('%s-%d' % (label, nodes))
    side_dir.mkdir(parents=True, exist_ok=True)
    with FileServer(side_dir / 'www') as files, SushyEmulator(side_dir / 'bmc', systems=nodes, tls=True, power_delay=0) as emulator:
        urls = [files.add_file('maintenance.iso', b'M' * 65536), files.add_file('task.iso', b'T' * 16384)]
        hosts = inventory(emulator, side_dir / 'hosts.ini')
        mark = emulator.mark()
        start = time.monotonic()
        result = run_playbook(play_for(emulator, urls), side_dir / 'ansible', inventory=str(hosts), extra_args=['-f', str(forks)],
                              env={'ANSIBLE_COLLECTIONS_PATH': collections}, timeout=3600)
        wall = time.monotonic() - start
        if result.rc != 0:
            raise SystemExit('%s run for N=%d failed:\n%s' % (label, nodes, result.output))
        served = emulator.requests_since(mark)
        # what a node must end up with, checked on the BMC itself
        for index in range(nodes):
            system = emulator.system(index)
            slots = [emulator.slot(slot_id, index) for slot_id in ('Cd', 'Cd2')]
            if system['PowerState'] != 'On' or sorted(s['Image'] for s in slots) != sorted(urls):
                images = [s['Image'] for s in slots]
                raise SystemExit('%s N=%d: node %d ended with power %s and media %s' % (label, nodes, index, system['PowerState'], images))
    return len(served) / nodes, wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--nodes', default='1,10,50', help='comma-separated node counts (default 1,10,50)')
    parser.add_argument('--forks', type=int, default=10, help='ansible forks for both sides (default 10)')
    parser.add_argument('--rounds', type=int, default=1, help='runs of each side per N, alternating which goes first (default 1)')
    parser.add_argument('--no-peer', action='store_true', help='measure only this collection')
    parser.add_argument('--keep', action='store_true', help='keep the work directory (logs, playbooks)')
    args = parser.parse_args()
    counts = [int(n) for n in args.nodes.split(',') if n.strip()]

    method = _method.Method(enabled=False).start('redfish_flow')
    prepare_layout()
    peer_path, peer_note = (None, 'skipped (--no-peer)') if args.no_peer else peer_collections()
    ours_path = str(BUILD)
    workdir = Path(tempfile.mkdtemp(prefix='redfish-bench-'))
    print('peer: %s' % (peer_note if peer_path else 'NOT MEASURED - ' + peer_note), flush=True)
    print('forks: %d; emulator: sushy-tools fake driver, TLS + basic auth, 2 virtual CDs per system, no power delay' % args.forks)
    header = '%5s | %14s %10s | %14s %10s | %9s %9s' % ('N', 'ours req/node', 'ours s', 'peer req/node', 'peer s', 'req ratio', 'time ratio')
    print(header)
    print('-' * len(header), flush=True)
    try:
        for nodes in counts:
            runs: dict[str, list[tuple[float, float]]] = {'ours': [], 'peer': []}
            for round_index in range(args.rounds):
                for side in _method.order(round_index, ['ours', 'peer'] if peer_path is not None else ['ours']):
                    if side == 'ours':
                        runs[side].append(run_side('ours', nodes, args.forks, workdir / ('r%d' % round_index), our_play, ours_path))
                    else:
                        runs[side].append(run_side('peer', nodes, args.forks, workdir / ('r%d' % round_index), peer_play,
                                                   '%s%s%s' % (ours_path, os.pathsep, peer_path)))
            ours_req, ours_wall = (statistics.median(values) for values in zip(*runs['ours'], strict=True))
            if peer_path is not None:
                peer_req, peer_wall = (statistics.median(values) for values in zip(*runs['peer'], strict=True))
                row = (nodes, ours_req, ours_wall, peer_req, peer_wall, ours_req / peer_req, ours_wall / peer_wall)
                print('%5d | %14.1f %10.1f | %14.1f %10.1f | %9.2f %9.2f' % row, flush=True)
                print('      ' + _method.ratio_line('ours / peer (wall time, N=%d)' % nodes, [w for _r, w in runs['ours']], [w for _r, w in runs['peer']]),
                      flush=True)
            else:
                print('%5d | %14.1f %10.1f | %14s %10s | %9s %9s' % (nodes, ours_req, ours_wall, '-', '-', '-', '-'), flush=True)
    finally:
        if args.keep:
            print('work directory kept: %s' % workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print('ratio = ours / peer (lower is better); wall time includes ansible-playbook start-up and module transfer')
    method.end()
    return 0


if __name__ == '__main__':
    sys.exit(main())
