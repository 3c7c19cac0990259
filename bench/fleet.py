# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark: a SIMULATED fleet provisioned end to end, per fleet size and receiver setup (issue 17).

The servers are SIMULATED: one sushy-tools emulator (fake driver, ``l3metal_lab.sushy``) serves N systems that boot
nothing, and ``l3metal_lab.node_simulator.SimulatedNode`` plays each booted maintenance OS with the real dispatcher
(``provisioner run --dry-run``) and the real ``provisioner notify`` - the same lab as ``make demo-fleet``
(``l3metal_lab.lab.Lab``).  One ``ansible-playbook playbooks/provision_linux.yml`` run per size and setup drives every
node through: job, task medium, both CDs, boot, wait for the outcome, eject, reboot, close the job.  One node per run
(node-02) is made to fail at bootloader-linux.service: the injected failure; every other node must succeed.

Setups, each started fresh per size on 127.0.0.1, random ports:

  sqlite:    one receiver on its embedded SQLite store
  postgres:  two receivers on one real PostgreSQL database (``l3metal_lab.postgres``: a temporary cluster) behind
             nginx (``l3metal_lab.nginx.NginxBalancer``, round robin); the playbook and the nodes talk to nginx

Printed per size and setup: wall time of the playbook, per-node controller overhead (playbook wall / nodes, and the
controller's CPU per node: ansible-playbook and its forks, from wait4), Redfish requests per node (the emulator's
access log, minus the simulator's own reads, which are counted), receiver CPU seconds per node (utime+stime from
/proc/<pid>/stat of each receiver, before and after), failures (the playbook's and the simulation's own: a SIMULATED
node that breaks down stops the run with its error instead of leaving the playbook waiting for it), the longest wait of
a simulated node for its boot, the peak of the simulation's process gate, the time and the load average before and
after.  Goal lines, per size: ``ratio = overhead(size) / overhead(smallest)`` of the same setup in the same invocation
(the issue wants 200 vs 10 within 1.2), and requests per succeeded node against a single-node run (size 1, sqlite)
measured first in the same run.

The simulation costs CPU of its own (about eleven Python processes per node for the dispatcher and notify, and the
node threads' polling), on the same cores as the controller and the receivers: figures are for this machine's load,
printed with the load average.  Sizes 100 and 200 take many minutes on two shared cores; the default is 10,50.

Run after ``make setup``::

    make bench BENCH=fleet BENCH_ARGS='--sizes 10,50,100,200'
    .venv/bin/python bench/fleet.py [--sizes 10,50] [--setups sqlite,postgres] [--forks 20]
"""

from __future__ import annotations

import argparse
import collections
import difflib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import typing as t
from pathlib import Path

from l3metal_lab.lab import Lab
from l3metal_lab.nginx import NginxBalancer
from l3metal_lab.node_simulator import PROCESS_GATE, watch_playbook
from l3metal_lab.paths import COLLECTION_ROOT as COLLECTION
from l3metal_lab.playbook import ansible_env
from l3metal_lab.postgres import Postgres
from l3metal_lab.receiver import Receiver
from l3metal_lab.sushy import TWO_CDS, SushyEmulator, fake_system

OCI_URL = 'registry.example.com/os-images/ubuntu-rootfs:24.04'
FAILING_STEP = 'bootloader-linux.service'
FAILING_NODE = 1  # node-02: the injected failure (in fleets of two or more)
CLOCK_TICKS = os.sysconf('SC_CLK_TCK')
TIMEOUT_PER_NODE = 15  # s of provision_timeout per SIMULATED node in the fleet (see run_size)


class CountingEmulator(SushyEmulator):
    """The fake-driver emulator whose ``get()`` (the simulator's and the harness's own reads) is counted, so that the
    requests the controller sent are the access log minus these.  Not seen by the playbook.  (The access log is read
    incrementally by ``SushyEmulator`` itself: the SIMULATED nodes poll it every 0.2 s each.)"""

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self._lock = threading.Lock()
        self.harness_gets = 0

    def get(self, path: str) -> dict[str, t.Any]:
        with self._lock:
            self.harness_gets += 1
        return super().get(path)


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process, from /proc/<pid>/stat."""
    fields = Path('/proc/%d/stat' % pid).read_text().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def receiver_pid(receiver: Receiver) -> int:
    assert receiver.service is not None and receiver.service.process is not None
    return receiver.service.process.pid


class Setup:
    """The receivers of one setup around a ``Lab``; ``url`` is where the playbook and the nodes send everything."""

    def __init__(self, name: str, work: Path, nodes: int, postgres: Postgres | None) -> None:
        self.name = name
        bmc = CountingEmulator(work / 'bmc', systems=[fake_system(i + 1) for i in range(nodes)], vmedia=TWO_CDS, power_delay=0)
        args: list[str] = []
        if postgres is not None:
            self.database = postgres.database()
            args = ['--database-url', self.database]
        self.lab = Lab(work, nodes=nodes, bmc=bmc, receiver_args=args)
        self.bmc = bmc
        self.receivers = [self.lab.receiver]
        self.balancer: NginxBalancer | None = None
        if postgres is not None:
            second = Receiver(work / 'receiver-b', extra_args=args)
            second.media_dir = self.lab.receiver.media_dir  # one media directory for both (the task media are written there)
            self.receivers.append(second)

    def start(self) -> Setup:
        self.lab.start()
        try:
            for receiver in self.receivers[1:]:
                receiver.start()
            if len(self.receivers) > 1:
                self.balancer = NginxBalancer(['127.0.0.1:%d' % r.port for r in self.receivers], self.lab.work_dir / 'nginx').start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.balancer is not None:
            self.balancer.stop()
        for receiver in self.receivers[1:]:
            receiver.stop()
        self.lab.stop()

    @property
    def url(self) -> str:
        return self.balancer.url if self.balancer is not None else self.lab.receiver.url

    def receiver_cpu(self) -> float:
        return sum(cpu_seconds(receiver_pid(r)) for r in self.receivers)


def run_size(name: str, nodes: int, work: Path, postgres: Postgres | None, forks: int, inject: bool) -> dict[str, t.Any]:
    """One setup, one fleet size: start everything, one playbook run, measure, stop everything."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    setup = Setup(name, work, nodes, postgres).start()
    try:
        lab = setup.lab
        inventory = lab.write_inventory(provision_oci_url=OCI_URL, provision_user_data='#cloud-config\nhostname: {{ inventory_hostname }}\n',
                                        provision_receiver_url=setup.url,
                                        provision_maintenance_iso_url='%s/media/maintenance.iso' % setup.url)
        failing = {FAILING_NODE} if inject and nodes > FAILING_NODE else set()
        for index in range(nodes):
            # no boot deadline of the simulation's own: every node's reset comes after the start phase of the whole fleet
            # (the longest wait was 693 s at 100 nodes, past the default 300 s), and the playbook run bounds the
            # simulation (the nodes are stopped when it ends; a node's error stops it early, see watch_playbook)
            lab.simulate(index, fail_step=FAILING_STEP if index in failing else None, boot_timeout=None)
        record = work / 'record.jsonl'
        env = ansible_env(work, {'L3METAL_RECORD_FILE': str(record), 'ANSIBLE_FORKS': str(forks)})
        # the playbook waits for the nodes in batches of forks while every SIMULATED node's work shares this machine's
        # cores (the process gate): the first batch waits about as long as the whole fleet's simulation, which grows
        # with the fleet (at 100 nodes, load 11-28: 12 min, past the 6 s/node = 600 s this was; two nodes timed out
        # and reported success a minute later); a real node has its own CPU, so this is the simulation's allowance
        argv = [str(Path(sys.executable).with_name('ansible-playbook')), '-i', str(inventory), str(COLLECTION / 'playbooks' / 'provision_linux.yml'),
                '-e', 'provision_serial=100%', '-e', 'provision_max_fail_percentage=100',
                '-e', 'provision_timeout=%d' % max(300, TIMEOUT_PER_NODE * nodes)]
        bmc_mark = len(setup.bmc.requests())
        gets_mark = setup.bmc.harness_gets
        cpu_before = setup.receiver_cpu()
        PROCESS_GATE.reset_peak()
        started = time.monotonic()
        with open(work / 'playbook.log', 'wb') as log:
            process = subprocess.Popen(argv, env=env, cwd=str(work), stdout=log, stderr=subprocess.STDOUT,  # pylint: disable=consider-using-with
                                       start_new_session=True)
            _status, usage, stopped_for = watch_playbook(process, lab.nodes)
            if stopped_for:
                print('bench/fleet: %s %d: the playbook was stopped: %s' % (name, nodes, stopped_for), flush=True)
        wall = time.monotonic() - started
        receiver_cpu = setup.receiver_cpu() - cpu_before
        for node in lab.nodes:
            node.stop()
        requests = setup.bmc.requests()[bmc_mark:]
        controller_requests = len(requests) - (setup.bmc.harness_gets - gets_mark)
        per_system = {}
        sequences: dict[int, list[str]] = {}
        for index, system_id in enumerate(setup.bmc.system_ids):
            sequences[index] = ['%s %s' % (r.method, r.path.split(system_id, 1)[1] or '/') for r in requests if system_id in r.path]
            per_system[index] = len(sequences[index])
        outcomes: dict[str, str] = {}
        for line in record.read_text().splitlines() if record.exists() else []:
            item = json.loads(line)
            facts = item['result'].get('ansible_facts') or {}
            if 'provision_node_result' in facts:
                outcomes[item['host']] = str(facts['provision_node_result'].get('outcome'))
        failed = sorted(host for index, host in enumerate(lab.host_name(i) for i in range(nodes))
                        if outcomes.get(host) != ('failed' if index in failing else 'succeeded'))
        simulator_errors = {node.name: str(node.error) for node in lab.nodes if node.error is not None}
        failed = sorted(set(failed) | set(simulator_errors))
        boot_waits = [node.report['boot_wait'] for node in lab.nodes if 'boot_wait' in node.report]
        succeeded = [i for i in range(nodes) if i not in failing]
        # a succeeded system whose requests differ from the most common sequence: what differs, for the log (a retried
        # read under load, or the flow changing with the fleet size)
        usual = collections.Counter(tuple(sequences[i]) for i in succeeded).most_common(1)
        deviations = {lab.host_name(i): [line for line in difflib.ndiff(list(usual[0][0]), sequences[i]) if line[:1] in '+-'][:10]
                      for i in succeeded if usual and tuple(sequences[i]) != usual[0][0]}
        # what the simulator read per system (system, VirtualMedia, its two slots) is in per_system too: take it out
        sim_reads = 4
        return {
            'setup': name, 'nodes': nodes, 'rc': process.returncode, 'wall': wall,
            'overhead': wall / nodes, 'controller_cpu': (usage.ru_utime + usage.ru_stime) / nodes,
            'requests': controller_requests / nodes,
            'requests_succeeded': sorted({per_system[i] - sim_reads for i in succeeded}),
            'receiver_cpu': receiver_cpu / nodes, 'injected': len(failing), 'unexpected': failed,
            'simulator_errors': simulator_errors, 'stopped_for': stopped_for,
            'boot_wait_max': max(boot_waits) if boot_waits else None, 'gate_peak': PROCESS_GATE.peak, 'gate_slots': PROCESS_GATE.slots,
            'deviations': deviations,
        }
    finally:
        setup.stop()


def show(result: dict[str, t.Any]) -> None:
    print('%-8s %4d nodes: wall %7.1f s  overhead %.3f s/node  controller CPU %.3f s/node  Redfish %.1f req/node '
          '(per succeeded system %s)  receiver CPU %.4f s/node  injected failures %d  unexpected %s  rc %d  longest boot wait %s  '
          'process gate peak %d/%d  started %s UTC  load before %s after %s'
          % (result['setup'], result['nodes'], result['wall'], result['overhead'], result['controller_cpu'], result['requests'],
             '/'.join(str(n) for n in result['requests_succeeded']), result['receiver_cpu'], result['injected'],
             ','.join(result['unexpected']) or 'none', result['rc'],
             '-' if result['boot_wait_max'] is None else '%.0f s' % result['boot_wait_max'], result['gate_peak'], result['gate_slots'],
             result['started'], result['load_before'], result['load']), flush=True)
    for node, error in sorted(result['simulator_errors'].items()):
        print('  SIMULATED %s failed: %s' % (node, error), flush=True)
    for host, lines in sorted(result['deviations'].items()):
        print('  %s: its Redfish requests differ from the other succeeded systems\' (- missing, + extra; paths below the system): %s'
              % (host, '; '.join(lines)), flush=True)
    if result['stopped_for']:
        print('  the playbook was stopped: %s' % result['stopped_for'], flush=True)


def smallest(results: t.Sequence[dict[str, t.Any]], setup: str) -> dict[str, t.Any] | None:
    """The run every size of ``setup`` is compared with: its smallest fleet in this invocation."""
    return min((r for r in results if r['setup'] == setup), key=lambda r: r['nodes'], default=None)


def show_ratio(result: dict[str, t.Any], base: dict[str, t.Any]) -> None:
    print('%s: ratio = overhead(%d) / overhead(%d) = %.3f / %.3f = %.2f (goal <= 1.2)  controller CPU ratio %.2f'
          % (result['setup'], result['nodes'], base['nodes'], result['overhead'], base['overhead'], result['overhead'] / base['overhead'],
             result['controller_cpu'] / base['controller_cpu']), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--sizes', default='10,50', help='fleet sizes, comma separated (issue 17: 10,50,100,200; default %(default)s)')
    parser.add_argument('--setups', default='sqlite,postgres', help='receiver setups: sqlite, postgres (default %(default)s)')
    parser.add_argument('--forks', type=int, default=20, help='ansible forks (default %(default)s)')
    parser.add_argument('--work', default='', help='work directory (default: a temporary one, removed at the end)')
    args = parser.parse_args()
    sizes = sorted({int(size) for size in args.sizes.split(',') if size.strip()})
    setups = [name.strip() for name in args.setups.split(',') if name.strip()]
    unknown = [name for name in setups if name not in ('sqlite', 'postgres')]
    if unknown or not sizes or min(sizes) < 1:
        parser.error('--setups: sqlite and/or postgres (not %s); --sizes: positive integers' % ','.join(unknown) if unknown else '--sizes: positive integers')
    work = Path(args.work).resolve() if args.work else Path(tempfile.mkdtemp(prefix='l3metal-bench-fleet-'))
    print('bench/fleet: SIMULATED nodes (sushy-tools fake driver + l3metal_lab.node_simulator), %d cores, sizes %s, setups %s, forks %d'
          % (os.cpu_count() or 0, ','.join(map(str, sizes)), ','.join(setups), args.forks), flush=True)
    postgres = Postgres(work).start() if 'postgres' in setups else None
    results: list[dict[str, t.Any]] = []
    ok = True
    try:
        single = run_size('sqlite', 1, work / 'single', None, args.forks, inject=False)
        single['load'] = '%.2f' % os.getloadavg()[0]
        print('single node (sqlite, no injected failure): %.1f Redfish requests, %s to its system' % (single['requests'], single['requests_succeeded']))
        for name in setups:
            for size in sizes:
                load_before = '%.2f %.2f %.2f' % os.getloadavg()
                started = time.strftime('%H:%M', time.gmtime())
                result = run_size(name, size, work / ('%s-%d' % (name, size)), postgres if name == 'postgres' else None, args.forks, inject=True)
                result.update(load='%.2f %.2f %.2f' % os.getloadavg(), load_before=load_before, started=started)
                show(result)
                results.append(result)
                base = smallest(results, name)
                if base is not None and base is not result:
                    show_ratio(result, base)
                ok = ok and not result['unexpected']
    finally:
        if postgres is not None:
            postgres.stop()
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    print()
    for name in setups:
        mine = [r for r in results if r['setup'] == name]
        base = smallest(results, name)
        for result in mine:
            if base is not None and result is not base:
                show_ratio(result, base)
        same = all(r['requests_succeeded'] == single['requests_succeeded'] for r in mine)
        print('%s: Redfish requests per succeeded system %s vs single node %s: %s'
              % (name, ', '.join('%d: %s' % (r['nodes'], r['requests_succeeded']) for r in mine), single['requests_succeeded'],
                 'unchanged' if same else 'CHANGED'))
    failures = [r for r in results if r['unexpected']]
    print('unexpected failures: %s' % ('; '.join('%s %d: %s' % (r['setup'], r['nodes'], ','.join(r['unexpected'])) for r in failures) or 'none'))
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
