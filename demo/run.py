# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""`make demo`: provision one server with playbooks/provision_linux.yml, end to end, on this machine.

The server is a QEMU VM behind a Redfish BMC (sushy-tools' libvirt driver with the lab's adapter, a private libvirtd;
TCG unless KVM really works here).  Started on 127.0.0.1: the real webhook receiver, which is also the registry
(single-service mode, docs/registry.md: /v2/ on the same port as the webhooks and the media, an OCI image layout in
demo-output/lab/oci/) holding a small Debian root filesystem (kernel, GRUB, cloud-init) pushed by the collection's
oci_artifact with a push user, and the maintenance ISO (built, or taken from the cache).  ``--registry separate`` puts
the root filesystem in a Debian docker-registry of its own instead.  The playbook talks to the BMC only through Redfish: it
inserts the maintenance ISO and the job's task medium, boots the VM once from the CD, follows the node's reports
(each step as it starts and ends, with its duration), ejects the media and boots the VM from its disk.  The demo
watches the VM's console until the installed system's cloud-init writes the line the user-data asks for, then sums
up: status, the duration of every phase, the failed step if any, which blob requests of the node the registry answered,
and that the installed system booted.

Nothing on the node side is simulated; the one shortcut is the BMC's route to the address the VM uses for the host
(l3metal_lab/guestnet.py).  Everything (inventory, playbook output, console, the receiver's job record) stays in
demo-output/.  The simulated two-node demo is `make demo-fleet` (demo/fleet.py).
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import shutil
import subprocess
import sys
import threading
import time
import typing as t
from pathlib import Path

from l3metal_lab.paths import COLLECTION_ROOT as COLLECTION
from l3metal_lab.paths import SOURCE_ROOT as ROOT
from l3metal_lab.playbook import ansible_env
from l3metal_lab.vm import Console
from l3metal_lab.vmlab import CLOUD_INIT_MARKER, LINUX_LAYOUT, TARGET_DISK, VmLab, user_data, vm_server
from l3metal_lab.vmlab_images import ImagesUnavailable, node_images

STARTED = time.monotonic()
REPOSITORY = 'os-images/debian-lab'  # where the root filesystem is pushed (tag 1)
_print_lock = threading.Lock()
# What the console shows, in the order a provisioning shows it (SeaBIOS / OVMF, the maintenance OS, the installed system).
MILESTONES = (
    (r'Booting from DVD/CD|BdsDxe: loading Boot\w+ "UEFI QEMU DVD-ROM', 'firmware boots the virtual CD (maintenance ISO)'),
    (r'Linux version', 'maintenance OS: kernel started'),
    (r'Reached target .*initrd-root-fs|Switching root', 'maintenance OS: live root file system (copied to RAM) mounted'),
    (r'provisioner: task medium', 'maintenance OS: the dispatcher found the task medium'),
    (r'Booting from Hard Disk|BdsDxe: loading Boot\w+ "(debian|UEFI Misc Device)', 'firmware boots the disk (installed system)'),
    (r'Linux version', 'installed system: kernel started'),
    (r"Cloud-init v\. \S+ running 'modules:final'", 'installed system: cloud-init final stage'),
    (CLOUD_INIT_MARKER + r'.*', 'installed system: cloud-init ran the user-data from the config drive'),
)


def clock() -> str:
    seconds = int(time.monotonic() - STARTED)
    return '%02d:%02d' % (seconds // 60, seconds % 60)


def say(text: str = '') -> None:
    with _print_lock:
        print(text, flush=True)


def note(text: str) -> None:
    say('[%s] %s' % (clock(), text))


def at(event: t.Mapping[str, t.Any]) -> float:
    return datetime.datetime.fromisoformat(event['at'].replace('Z', '+00:00')).timestamp()


class ConsoleWatcher(threading.Thread):
    """Prints the milestones of the VM's serial console as they appear (a boot says nothing to the receiver for a while)."""

    def __init__(self, console: Console) -> None:
        super().__init__(daemon=True, name='console-watcher')
        self.console = console
        self.start_offset = console.size()
        self.seen: dict[str, tuple[float, str]] = {}  # milestone -> (wall time, the line)
        self.stopping = threading.Event()

    def run(self) -> None:
        milestone, searched = 0, 0  # the next milestone; where in the console's text (since start_offset) to look for it
        while not self.stopping.is_set() and milestone < len(MILESTONES):
            text = self.console.text(self.start_offset)
            pattern, label = MILESTONES[milestone]
            found = re.compile(pattern).search(text, searched)
            if found:
                end = text.find('\n', found.end())
                line = text[text.rfind('\n', 0, found.start()) + 1:end if end >= 0 else len(text)]
                self.seen[label] = (time.time(), line.strip())
                note('console: %s' % label)
                milestone, searched = milestone + 1, found.end()
                continue
            self.stopping.wait(1.0)

    def done(self, timeout: float) -> bool:
        self.join(timeout)
        return MILESTONES[-1][1] in self.seen


def run_playbook(out: Path, inventory: Path) -> tuple[int, float, float]:
    """ansible-playbook provision_linux.yml with its output shown; (exit code, wall start, wall end)."""
    env = ansible_env(out, {'L3METAL_RECORD_FILE': str(out / 'record.jsonl'), 'ANSIBLE_DISPLAY_SKIPPED_HOSTS': 'false'})
    argv = [str(Path(sys.executable).with_name('ansible-playbook')), '-i', str(inventory), str(COLLECTION / 'playbooks' / 'provision_linux.yml'),
            '-e', 'provision_timeout=1800']
    shown = inventory.relative_to(ROOT) if inventory.is_relative_to(ROOT) else inventory
    say('$ ansible-playbook -i %s playbooks/provision_linux.yml -e provision_timeout=1800' % shown)
    begin = time.time()
    with open(out / 'playbook.log', 'w', encoding='utf-8') as log:
        proc = subprocess.Popen(argv, env=env, cwd=str(out), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            say('    ' + line.rstrip('\n'))
        rc = proc.wait()
    return rc, begin, time.time()


def phases(events: list[dict[str, t.Any]], begin: float, end: float, watcher: ConsoleWatcher) -> list[tuple[str, float | None]]:
    """(phase, seconds) of one provisioning, from the receiver's events, the playbook's run and the console."""
    def first(**match: str) -> float | None:
        found = [at(e) for e in events if all(e.get(k) == v for k, v in match.items())]
        return found[0] if found else None

    booted = first(type='status', status='provisioning')
    node = next((at(e) for e in events if e.get('source') == 'node'), None)
    outcome = next((at(e) for e in events if e.get('type') == 'status' and e.get('status') in ('succeeded', 'failed')), None)
    complete = first(type='status', status='complete')
    cloud_init = watcher.seen.get(MILESTONES[-1][1], (None, ''))[0]
    result: list[tuple[str, float | None]] = [
        ('controller: recipe, BMC, job, task medium, media inserted, one-time boot, reset', booted - begin if booted else None),
        ('maintenance OS boot: reset to the node\'s first report', node - booted if node and booted else None),
    ]
    started: dict[str, float] = {}
    for event in events:
        if event.get('type') == 'progress' and event.get('state') == 'started':
            started[event['step']] = at(event)
        elif event.get('type') == 'progress' and event.get('state') == 'done' and event['step'] in started:
            result.append(('  step %s' % event['step'], at(event) - started.pop(event['step'])))
    for step, since in started.items():
        result.append(('  step %s (did not finish)' % step, (outcome or end) - since))
    result.append(('cleanup: eject, one-time boot from the disk, reset, close the job', complete - outcome if complete and outcome else None))
    result.append(('installed system boot: reset to cloud-init\'s line', cloud_init - complete if cloud_init and complete else None))
    result.append(('total: playbook start to cloud-init\'s line' if cloud_init else 'total: the playbook', (cloud_init or end) - begin))
    return result


def summary(lab: VmLab, begin: float, end: float, rc: int, watcher: ConsoleWatcher, setup: dict[str, float]) -> bool:
    host = lab.host_name(0)
    jobs = lab.jobs(0)
    job = lab.receiver.get_job(jobs[0]['job_id']) if jobs else {}
    events = lab.receiver.events(job['job_id']) if job else []
    system = lab.system(0)
    say('\n================ summary ================')
    accelerator = 'KVM' if lab.domain_type == 'kvm' else 'QEMU TCG'
    firmware = lab.vm_bmc.specs[0].firmware.upper()
    say('%s (serial %s, %s, %s, BMC system %s)' % (host, system.get('SerialNumber'), firmware, accelerator, lab.bmc.system_ids[0]))
    say('  job           %s: %s' % (job.get('job_id'), ' -> '.join(e['status'] for e in events if e['type'] == 'status') or 'none'))
    say('  status        %s%s' % (job.get('status'), (', failed at %s' % job['failed_step']) if job.get('failed_step') else ''))
    if job.get('reason'):
        say('  reason        %s' % job['reason'])
    if job.get('log_tail'):
        say('  log tail      ' + '\n                '.join(job['log_tail'].splitlines()[-15:]))
    say('  set-up        ' + ', '.join('%s %.0f s' % item for item in setup.items()))
    say('  phases')
    for name, seconds in phases(events, begin, end, watcher):
        say('    %-82s %s' % (name, '%6.1f s' % seconds if seconds is not None else '     -'))
    seen = watcher.seen.get(MILESTONES[-1][1])
    pulls = [p for p in lab.blob_pulls(REPOSITORY) if p.method == 'GET' and p.status in (200, 206)] if lab.embedded else []
    if lab.embedded:
        say('  registry      the receiver\'s /v2/ (%s) answered %d blob GET(s) of %s: %s' % (
            lab.embedded.layout, len(pulls), REPOSITORY, ', '.join('%s %d' % (p.path.rsplit('/', 1)[1][:19], p.status) for p in pulls) or 'none'))
    else:
        say('  registry      separate (docker-registry %s)' % lab.registry.url)
    say('  installed     %s' % ('booted: cloud-init wrote "%s"' % seen[1] if seen else 'NOT seen booting (see the console in demo-output/)'))
    say('  now           power %s, boot override %s/%s, media inserted: %s' % (
        system['PowerState'], system['Boot']['BootSourceOverrideTarget'], system['Boot']['BootSourceOverrideEnabled'], lab.inserted(0) or 'none'))
    ok = rc == 0 and job.get('status') == 'complete' and not job.get('failed_step') and bool(seen) and job.get('job_id', '-') in (seen or ('', ''))[1]
    return ok and (bool(pulls) or lab.embedded is None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--output', default=str(ROOT / 'demo-output'), help='work directory (emptied first; default %(default)s)')
    parser.add_argument('--registry', choices=['embedded', 'separate'], default='embedded',
                        help='the receiver\'s own /v2/ (default) or a Debian docker-registry of its own')
    parser.add_argument('--firmware', choices=['bios', 'uefi'], default='bios', help='the VM server\'s firmware (default %(default)s)')
    args = parser.parse_args()
    out = Path(args.output).resolve()
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    setup: dict[str, float] = {}
    say('demo: one VM server provisioned with playbooks/provision_linux.yml through Redfish (work dir %s)' % out)

    note('node images: the maintenance ISO (the maintenance_iso role) and the Debian root filesystem, built now (about 5 minutes '
         'on two cores) or found in the cache (seconds) ...')
    start = time.monotonic()
    try:
        images = node_images(need=('linux',))
    except ImagesUnavailable as exc:
        say('demo: %s' % exc)
        return 1
    setup['images'] = time.monotonic() - start
    assert images.linux_rootfs is not None
    built = images.iso.result.get('durations') or {}
    stages = ('built: ' + ', '.join('%s %.0f s' % (name, built[name]) for name in images.iso.result.get('rebuilt') or [] if name in built)
              if images.iso.changed else 'up to date')
    note('  maintenance ISO %s (%d MiB; %s), root filesystem %s (%d MiB), %.0f s (%s)' % (
        images.maintenance_iso.name, images.maintenance_iso.stat().st_size >> 20, stages or 'stages not reported', images.linux_rootfs.name,
        images.linux_rootfs.stat().st_size >> 20, setup['images'], images.origin))
    note('  seconds per image (the OS image and WIM are built while the ISO is): %s; receiver port %d (named on the ISO\'s kernel '
         'command line for pre-flight failures)' % (', '.join('%s %.0f' % item for item in images.seconds.items()), images.receiver_port))

    start = time.monotonic()
    lab = VmLab(out / 'lab', [vm_server(1, args.firmware, vcpus=2)], images, registry=args.registry)
    with lab:
        setup['services'] = time.monotonic() - start
        note('services up in %.0f s: receiver %s, registry %s, BMC %s (a QEMU VM under %s), the VM reaches the host at %s' % (
            setup['services'], lab.receiver.url, lab.registry.url + (" (the receiver's /v2/)" if lab.embedded else ' (docker-registry)'),
            lab.bmc.url, 'KVM' if lab.domain_type == 'kvm' else 'TCG',
            lab.guest_receiver_url.split('//', 1)[1].split(':')[0]))
        start = time.monotonic()
        reference = lab.push('linux_rootfs', REPOSITORY + ':1', out / 'publish')
        setup['push'] = time.monotonic() - start
        note('root filesystem pushed with oci_artifact in %.0f s%s; the node pulls %s (anonymously: pull is open)' % (
            setup['push'], ' as user %s (password from the environment, no_log)' % lab.embedded.username if lab.embedded else '', reference))
        inventory = lab.write_inventory(path=out / 'inventory.yml', provision_oci_url=reference, provision_target_disk=TARGET_DISK,
                                        provision_partition_layout=LINUX_LAYOUT, provision_user_data=user_data())
        note('inventory %s; the user-data makes cloud-init write "%s host=... instance=<job id>" to the console' % (inventory, CLOUD_INIT_MARKER))
        watcher = ConsoleWatcher(lab.console(0))
        watcher.start()
        rc, begin, end = run_playbook(out, inventory)
        note('playbook done (exit %d) in %.0f s; waiting for the installed system ...' % (rc, end - begin))
        booted = watcher.done(600 if rc == 0 else 1)
        watcher.stopping.set()
        ok = summary(lab, begin, end, rc, watcher, setup)
        lab.save_artifacts(out / 'artifacts')
        (out / 'summary.json').write_text(json.dumps({'rc': rc, 'ok': ok, 'booted': booted, 'setup_s': setup,
                                                      'milestones': {k: v[0] for k, v in watcher.seen.items()}}, indent=2))
    say('\ndemo took %.0f s (%s); console, job record and logs in %s' % (time.monotonic() - STARTED, clock(), out / 'artifacts'))
    say('demo: %s' % ('the server was provisioned and booted its installed system' if ok else 'NOT as expected'))
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
