# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a SIMULATED fleet needs from the node simulator (issue 17): the process gate never lets more than its slots
run, the boot is found by reading only the new part of the BMC's log, no boot deadline means waiting until stopped,
and a node's error is visible at once and stops the playbook run instead of leaving it waiting.

No emulator is started: the BMC's access log is written by the test, in werkzeug's format."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from l3metal_lab.node_simulator import NodeSimulationError, ProcessGate, SimulatedNode, watch_playbook
from l3metal_lab.sushy import AccessRecord, SushyEmulator
from l3metal_lab.waiting import wait_for

# a child that records how many of its kind are running when it starts: its own file in a directory, counted
COUNTING_CHILD = '''
import os, sys, time
directory, seconds = sys.argv[1], float(sys.argv[2])
mine = os.path.join(directory, 'running-%d' % os.getpid())
open(mine, 'w').close()
count = sum(1 for name in os.listdir(directory) if name.startswith('running-'))
with open(os.path.join(directory, 'seen-%d' % os.getpid()), 'w') as seen:
    seen.write(str(count))
time.sleep(seconds)
os.unlink(mine)
'''


class SpyEmulator(SushyEmulator):
    """The emulator (not started) that records where each caller asked to read its log from."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.reads: list[tuple[int, int]] = []  # (mark asked for, records there were)

    def requests_since(self, mark: int) -> list[AccessRecord]:
        records = super().requests_since(mark)
        self.reads.append((mark, mark + len(records)))
        return records


def access(method: str, path: str, status: int = 204) -> str:
    return '127.0.0.1 - - [04/Dec/2026 19:00:00] "%s %s HTTP/1.1" %d -\n' % (method, path, status)


@pytest.fixture(name='bmc')
def fixture_bmc(tmp_path):
    bmc = SpyEmulator(tmp_path / 'bmc', systems=2)
    bmc.workdir.mkdir(parents=True)
    bmc.log_path.write_text('')
    return bmc


def log(bmc: SushyEmulator, *lines: str) -> None:
    with open(bmc.log_path, 'a', encoding='utf-8') as handle:
        handle.write(''.join(lines))


def most_seen_at_once(directory) -> int:
    return max(int((directory / name).read_text()) for name in os.listdir(directory) if name.startswith('seen-'))


def run_through(gate: ProcessGate, directory, children: int, seconds: float) -> None:
    threads = [threading.Thread(target=gate.run, args=([sys.executable, '-c', COUNTING_CHILD, str(directory), str(seconds)],),
                                kwargs={'check': True, 'timeout': 60}) for _child in range(children)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len([name for name in os.listdir(directory) if name.startswith('seen-')]) == children  # every child ran


def test_the_gate_never_lets_more_than_its_slots_run(tmp_path):
    gate = ProcessGate(2)
    run_through(gate, tmp_path, children=6, seconds=0.3)
    # counted by the children themselves, not by the gate's bookkeeping
    assert most_seen_at_once(tmp_path) <= 2
    assert gate.peak == 2 and gate.running == 0


def test_without_a_narrow_gate_the_children_do_overlap(tmp_path):
    # negative control: the counting children see each other when nothing holds them back
    run_through(ProcessGate(6), tmp_path, children=6, seconds=3)
    assert most_seen_at_once(tmp_path) > 2


def test_a_gate_has_at_least_one_slot():
    with pytest.raises(ValueError, match='at least one slot'):
        ProcessGate(0)


def test_the_boot_is_found_reading_only_what_the_bmc_logged_since_the_last_poll(bmc, tmp_path):
    mine, other = bmc.system_path(0), bmc.system_path(1)
    log(bmc, access('POST', mine + '/Actions/ComputerSystem.Reset'),  # a reset before any insertion: no boot
        access('POST', other + '/VirtualMedia/Cd/Actions/VirtualMedia.InsertMedia'), access('POST', other + '/Actions/ComputerSystem.Reset'),
        access('POST', mine + '/VirtualMedia/Cd/Actions/VirtualMedia.InsertMedia'),
        access('POST', mine + '/Actions/ComputerSystem.Reset', 400))  # refused: no boot either
    node = SimulatedNode(bmc, 0, tmp_path / 'node', boot_timeout=None).start()
    try:
        wait_for(lambda: (5, 5) in bmc.reads, what='the node read the five lines')
        wait_for(lambda: len(bmc.reads) >= 4, what='a few more polls')
        assert 'boot_wait' not in node.report and node.error is None
        log(bmc, access('POST', mine + '/Actions/ComputerSystem.Reset'))
        # it boots now; the emulator is not running, so its first read of the system fails - after the boot was seen
        wait_for(lambda: node.error is not None, what='the boot seen')
        assert 'boot_wait' in node.report
    finally:
        node.stop()
    reads = bmc.reads
    # every poll asked from where the previous one ended: nothing was read twice
    assert reads[0][0] == 0 and all(later[0] == earlier[1] for earlier, later in itertools.pairwise(reads))
    assert reads[-1][1] == 6


def test_without_a_boot_deadline_the_node_waits_until_stopped(bmc, tmp_path):
    node = SimulatedNode(bmc, 0, tmp_path / 'node', boot_timeout=None).start()
    wait_for(lambda: len(bmc.reads) >= 10, what='ten polls (2 s)')  # longer than the deadline below
    assert node.error is None
    node.stop()
    report = node.result(timeout=5)
    assert 'outcome' not in report and 'boot_wait' not in report


def test_a_node_error_is_visible_without_waiting_for_its_result(bmc, tmp_path):
    node = SimulatedNode(bmc, 0, tmp_path / 'node', boot_timeout=0.5).start()
    try:
        error = wait_for(lambda: node.error, timeout=10, what='the error')
        assert isinstance(error, NodeSimulationError) and 'no reset after a media insertion within 0.5 s' in str(error)
        with pytest.raises(NodeSimulationError, match='node-01: no reset'):
            node.result(timeout=5)
    finally:
        node.stop()


def test_a_node_error_stops_the_playbook_and_its_children(bmc, tmp_path):
    pid_file = tmp_path / 'child.pid'
    # a "playbook" that waits for ever, with a child of its own (ansible-playbook's forks)
    process = subprocess.Popen(['sh', '-c', 'sleep 300 & echo $! > %s; wait' % pid_file], start_new_session=True)  # pylint: disable=consider-using-with
    healthy = SimulatedNode(bmc, 1, tmp_path / 'healthy', boot_timeout=None).start()
    broken = SimulatedNode(bmc, 0, tmp_path / 'broken', boot_timeout=0.5).start()
    started = time.monotonic()
    try:
        wait_for(pid_file.exists, what='the child started')
        child = int(pid_file.read_text())
        status, usage, stopped_for = watch_playbook(process, [healthy, broken], interval=0.1)
    finally:
        healthy.stop()
        broken.stop()
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert time.monotonic() - started < 30
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM and process.returncode == -signal.SIGTERM
    assert stopped_for.startswith('1 SIMULATED node(s) failed, first node-01: no reset after a media insertion within 0.5 s')
    assert usage.ru_utime >= 0

    def child_gone() -> bool:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return True
        return False

    wait_for(child_gone, what='the playbook child ended too')  # nothing left behind


def test_a_playbook_of_healthy_nodes_runs_to_its_own_end(bmc, tmp_path):
    node = SimulatedNode(bmc, 0, tmp_path / 'node', boot_timeout=None).start()
    try:
        process = subprocess.Popen(['sh', '-c', 'sleep 0.5; exit 3'], start_new_session=True)  # pylint: disable=consider-using-with
        status, _usage, stopped_for = watch_playbook(process, [node], interval=0.1)
    finally:
        node.stop()
    assert os.waitstatus_to_exitcode(status) == 3 and process.returncode == 3 and stopped_for == ''
