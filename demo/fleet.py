# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""`make demo-fleet`: playbooks/provision_linux.yml against two SIMULATED servers (`make demo` runs a real VM server).

Started on 127.0.0.1, random ports: the real webhook receiver (foreground), a sushy-tools Redfish emulator whose two
systems stand for the servers (two virtual CDs each), and a stand-in maintenance ISO served by the receiver.  The
playbook runs with an embedded default recipe, four times: start both jobs without waiting, the same again (nothing
changes), wait for the outcomes and clean up, and once more for the server that succeeded (left alone).  The booted
maintenance OS is played by a simulator that does what the node would do with the real code: it reads the task medium
the emulator downloaded, runs the real dispatcher (``provisioner run --dry-run``) on it and reports each step with the
real ``provisioner notify``.  node-01 succeeds; node-02 fails at bootloader-linux.service, so the failure report shows
(its media stay inserted for debugging, as provision_eject_after_failure=false leaves them).  Everything lands in
demo-output/fleet/.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import threading
import time
import typing as t
from pathlib import Path

from l3metal_lab.lab import Lab, serial
from l3metal_lab.node_simulator import NodeSimulationError
from l3metal_lab.paths import COLLECTION_ROOT as COLLECTION
from l3metal_lab.paths import SOURCE_ROOT as ROOT
from l3metal_lab.playbook import ansible_env

OCI_URL = 'registry.example.com/os-images/ubuntu-rootfs:24.04'
USER_DATA = '#cloud-config\nhostname: {{ inventory_hostname }}\nssh_authorized_keys: []\n'
FAILING_STEP = 'bootloader-linux.service'
_print_lock = threading.Lock()


def say(text: str = '') -> None:
    with _print_lock:
        print(text, flush=True)


def shown(path: Path) -> str:
    """A path as the user best reads it: relative to the checkout when inside it."""
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def node_event(node: str, what: str) -> None:
    say('    [%s, simulated] %s' % (node, what))


def run_playbook(out: Path, inventory: Path, name: str, *args: str, quiet: bool = False) -> tuple[int, list[dict[str, t.Any]]]:
    """ansible-playbook provision_linux.yml, its output shown (or kept in <name>.log); returns (exit code, task results)."""
    record = out / ('record-%s.jsonl' % name)
    env = ansible_env(out, {'L3METAL_RECORD_FILE': str(record), 'ANSIBLE_DISPLAY_SKIPPED_HOSTS': 'false'})
    argv = [str(Path(sys.executable).with_name('ansible-playbook')), '-i', str(inventory), str(COLLECTION / 'playbooks' / 'provision_linux.yml'),
            # both servers in one batch, so a node's failure does not stop the other; demo-sized timeouts
            '-e', 'provision_serial=100%', '-e', 'provision_max_fail_percentage=100', '-e', 'provision_timeout=120', *args]
    say('$ ansible-playbook -i %s playbooks/provision_linux.yml %s' % (shown(inventory), ' '.join(argv[4:])))
    if quiet:
        with open(out / (name + '.log'), 'w', encoding='utf-8') as log:
            rc = subprocess.call(argv, env=env, cwd=str(out), stdout=log, stderr=subprocess.STDOUT)
    else:
        rc = subprocess.call(argv, env=env, cwd=str(out))
    records = [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []
    return rc, records


def changed_tasks(records: list[dict[str, t.Any]]) -> list[str]:
    return ['%s: %s' % (r['host'], r['task']) for r in records if r['result'].get('changed')]


def results(records: list[dict[str, t.Any]]) -> dict[str, dict[str, t.Any]]:
    """host -> provision_node_result, from the recorded 'Sum up' facts."""
    found = {}
    for record in records:
        facts = record['result'].get('ansible_facts') or {}
        if 'provision_node_result' in facts:
            found[record['host']] = facts['provision_node_result']
    return found


def summary(lab: Lab, outcomes: dict[str, dict[str, t.Any]], node_reports: list[dict[str, t.Any]]) -> bool:
    say('\n================ summary ================')
    say('(the emulator keeps every boot override as Continuous; a real BMC drops a one-time override after the boot)')
    ok = True
    for index, report in enumerate(node_reports):
        host = lab.host_name(index)
        result = outcomes.get(host, {})
        jobs = lab.jobs(index)
        job = jobs[0] if jobs else {}
        events = lab.receiver.events(job['job_id']) if job else []
        history = [e['status'] for e in events if e['type'] == 'status']
        steps = ['%s %s' % (e['step'], e['state']) for e in events if e['type'] == 'progress']
        system = lab.system(index)
        say('%s (serial %s, BMC system %s)' % (host, serial(index), lab.bmc.system_ids[index]))
        say('  job           %s: %s' % (job.get('job_id'), ' -> '.join(history) or 'none'))
        say('  outcome       %s%s' % (result.get('outcome'), (' at %s' % result['failed_step']) if result.get('failed_step') else ''))
        if result.get('reason'):
            say('  reason        %s' % result['reason'])
        if result.get('log_tail'):
            say('  log tail      ' + '\n                '.join(result['log_tail'].splitlines()))
        say('  node steps    %s' % ', '.join(steps))
        say('  task medium   %s (the node read the copy %s)' % (report.get('medium', '?').rsplit('/', 1)[-1], report.get('medium_source', '?')))
        mounted = result.get('boot_medium') or {}, result.get('task_medium') or {}
        say('  mounted       %s' % ', '.join('%s <- %s' % (slot.get('id'), slot.get('image')) for slot in mounted if slot))
        say('  ejected       %s; inserted now: %s' % ('; '.join(result.get('ejected') or []) or 'nothing', lab.inserted(index) or 'nothing'))
        after = '(rebooted into the installed system)' if result.get('outcome') == 'succeeded' else \
            '(left on the maintenance OS: provision_after_failure=none, its media in for debugging)'
        say('  boot override %s, power %s  %s' % (system['Boot']['BootSourceOverrideTarget'], system['PowerState'], after))
        expected = ('failed', FAILING_STEP) if index == 1 else ('succeeded', None)
        # a failed node keeps its media (provision_eject_after_failure=false), a successful one has none left
        media_as_expected = bool(lab.inserted(index)) == (index == 1)
        if (result.get('outcome'), result.get('failed_step')) != expected or not media_as_expected or job.get('status') != 'complete':
            ok = False
            say('  !! expected %s%s, media ejected after a success (left in after a failure) and the job complete' % expected)
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--output', default=str(ROOT / 'demo-output' / 'fleet'), help='work directory (emptied first; default %(default)s)')
    args = parser.parse_args()
    out = Path(args.output).resolve()
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    started = time.monotonic()
    say('demo-fleet: SIMULATED servers - the Redfish emulator boots nothing, l3metal_lab.node_simulator plays the node')
    say('demo: starting the webhook receiver and a Redfish emulator with two servers on 127.0.0.1 (work dir %s)' % out)
    with Lab(out, nodes=2) as lab:
        say('  receiver  %s   (log %s)' % (lab.receiver.url, lab.receiver.log_path.relative_to(out)))
        say('  BMC       %s   systems %s' % (lab.bmc.url, ', '.join(lab.bmc.system_ids)))
        say('  boot ISO  %s   (a stand-in: the bootc maintenance ISO cannot be built here)' % lab.maintenance_iso_url)
        inventory = lab.write_inventory(provision_oci_url=OCI_URL, provision_user_data=USER_DATA)
        say('  inventory %s' % shown(inventory))
        nodes = [lab.simulate(0, on_event=node_event), lab.simulate(1, fail_step=FAILING_STEP, on_event=node_event)]
        say('\nThe nodes are simulated (the emulator boots nothing). The callback URL is on 127.0.0.1, hence the warning.')

        say('\n---- 1. Start the job on both servers and return (provision_wait=false) ----')
        rc, _records = run_playbook(out, inventory, 'start', '-e', 'provision_wait=false')
        if rc != 0:
            say('demo: starting the jobs failed (exit %d)' % rc)
            return 1

        say('\n---- 2. The same again: nothing to do (no new job, no new medium, no second reboot) ----')
        mark = len(lab.changing_requests())
        rc, records = run_playbook(out, inventory, 'again', '-e', 'provision_wait=false', quiet=True)
        again = changed_tasks(records)
        idempotent = rc == 0 and not again and len(lab.changing_requests()) == mark
        say('  exit code %d, %d task(s) changed%s, %d request(s) that change something sent to the BMC (output in %s)'
            % (rc, len(again), (': ' + '; '.join(again)) if again else '', len(lab.changing_requests()) - mark,
               shown(out / 'again.log')))

        say('\n---- 3. Wait for the nodes\' reports, eject the media, boot the installed system, close the jobs ----')
        rc, records = run_playbook(out, inventory, 'collect')
        reports = []
        for node in nodes:
            try:
                reports.append(node.result(timeout=30 if rc in (0, 2) else 1))
            except NodeSimulationError as exc:
                say('simulated node: %s' % exc)
                reports.append(node.report)
        collected = results(records)

        say('\n---- 4. node-01 again: it ran this recipe well, so nothing is done (provision_reinstall=true would) ----')
        mark = len(lab.changing_requests())
        rerun_rc, records = run_playbook(out, inventory, 'rerun', '--limit', 'node-01', quiet=True)
        rerun = results(records).get('node-01', {})
        say('  exit code %d, outcome %s (job %s), %d task(s) changed, %d request(s) that change something sent to the BMC'
            % (rerun_rc, rerun.get('outcome'), rerun.get('job_id'), len(changed_tasks(records)), len(lab.changing_requests()) - mark))
        unchanged = rerun_rc == 0 and rerun.get('outcome') == 'unchanged' and not changed_tasks(records) and len(lab.changing_requests()) == mark

        ok = summary(lab, collected, reports) and idempotent and unchanged
    say('\nstep 3 exit code %d (2: a host failed, as node-02 should); demo took %.0f s' % (rc, time.monotonic() - started))
    say('demo: %s' % ('as expected' if ok and rc == 2 else 'NOT as expected'))
    return 0 if ok and rc == 2 else 1


if __name__ == '__main__':
    sys.exit(main())
