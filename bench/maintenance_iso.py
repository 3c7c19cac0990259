# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark: the maintenance ISO from build to ``succeeded`` in QEMU, and its image step against download + ``tar xzf`` in the same guest.

    make bench BENCH=maintenance_iso                      (root; QEMU under TCG unless --accel kvm; one VM; ~5-8 min)
    make bench BENCH=maintenance_iso BENCH_ARGS='--firmware uefi --peer-runs 2'

What it measures, with the lab's real pieces (l3metal_lab, as tests/e2e/maintenance_iso/test_linux.py uses them):

- ISO size and build time: the lab's maintenance ISO through the real role ``maintenance_iso`` (ansible-playbook, the real
  module), as the e2e tests and ``make demo`` build it.  Whatever the cache holds is used, and the bench says what it
  found: ``cached`` (nothing rebuilt) or which stages were rebuilt, with the module's per-stage seconds.
- The booted ISO is the same role's build with one more kernel argument, ``systemd.debug_shell=ttyS1`` (systemd's own
  debug shell, a root bash on the VM's second serial port, a Unix socket here) and the bench's receiver port: only the
  ``iso`` stage (GRUB's command line) differs, the squashfs, initramfs and tool images are the same files.  Nothing in
  the product is changed for the bench.  The shell is a root shell without login: never boot such an ISO outside a lab.
- Workflow A for real: a job registered with the real receiver, a task CD from task_iso's code, a blank virtio disk; the
  lab's Debian rootfs (``node_images.linux_rootfs``, one ``.tar.gz`` layer) in a real registry on the host.  Boot to the
  first webhook (the dispatcher's), each step's duration (its ``started`` -> ``done`` webhooks, by the receiver's clock)
  and power-on -> ``succeeded`` (the receiver's time of the status event minus QEMU's start).
- Ours vs peer in the SAME guest boot, on the SAME virtual disk.  The recipe's layout is the lab's (BIOS boot, ESP,
  cidata, ext4 root) with the root cut to ``--root-size`` and one more ext4 partition ``peer`` on the rest, made by the
  same partition step (mkfs.ext4 -q -F); image-linux ignores it (it takes the first Linux file system as /).
  ``ours`` = image-linux.service, started -> done webhooks: the podman start of its Quadlet container, the mounts,
  the streamed pull + digest check + unpack (l3metal_oci), fstab, the unmount, the ``done`` notify.  After ``succeeded``
  the bench runs the ``peer`` through the debug shell, in the live system (not in a container): drop the guest's page
  cache, mount the peer partition, ``python3`` urllib downloads the same blob from the same registry (the live system
  has no curl) into a fresh tmpfs (RAM: the faster place for the two-step baseline), ``tar xzf`` into the partition,
  ``umount`` (ours unmounts too: both pay the writeback).  Timed with the guest's clock (``date +%s.%N``); the host's
  wall time around each shell command is printed beside it.  ``--peer-runs N`` repeats the peer (mkfs.ext4 -q -F -L
  peer before runs after the first: the same command as the partition step).  The peer does not check the digest (a
  plain ``tar xzf`` does not); ``sha256sum`` of the downloaded blob is timed and printed apart, outside the peer.
  The journal of image-linux (read in the guest) gives ours' unpack alone (between its ``unpacking`` and ``unpacked``
  lines) for a second, labelled ratio.  Both trees are counted (entries, ``find -xdev``, without /boot/grub, which bootloader-linux fills on ours
  afterwards) to show the same files landed.

Prints every figure, ``ratio = ours / peer`` (image step / download + tar xzf) and writes ``figures.json`` and the
consoles to ``--work-dir`` (default tests/output/bench/maintenance_iso).  Goals (issue 12): ratio <= 1.0, power-on to
``succeeded`` under 5 min under TCG.  The host is shared: the load average before and after is printed.
Of the bench method (bench/_method.py) it takes the load average at start and end and the ratio line; not the pinning
(the guest's vCPU is one QEMU thread that runs both sides in one boot) nor alternating rounds (ours runs in the
provisioning, the peer after it in the same boot; another order would need another ~5 min boot per round).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import sys
import tempfile
import time
import typing as t
import urllib.request
from pathlib import Path

import _method
from l3metal_lab import node_images
from l3metal_lab.paths import COLLECTION_ROOT
from l3metal_lab.provisioner import NodeJob, b64, build_medium, linux_recipe
from l3metal_lab.qemu import GUEST_HOST, Vm
from l3metal_lab.receiver import Receiver, event_time, step_durations, write_node_key
from l3metal_lab.registry import Registry

DISK = '/dev/vda'
STEPS = ('partition.service', 'image-linux.service', 'bootloader-linux.service', 'config-drive.service')
DEBUG_SHELL_ARG = 'systemd.debug_shell=ttyS1'
PEER_LABEL = 'peer'
MANIFEST_TYPES = 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json'


def bench_layout(root_size: str) -> list[dict[str, t.Any]]:
    """The lab's layout with the root cut to ``root_size`` and the peer's ext4 partition on the rest of the disk."""
    layout = [dict(part) for part in node_images.LINUX_LAYOUT]
    assert layout[-1]['label'] == 'root' and layout[-1]['format'] == 'ext4', layout
    layout[-1]['size'] = root_size
    layout.append({'size': '100%', 'type_guid': '8300', 'format': 'ext4', 'label': PEER_LABEL})
    return layout


def loadavg() -> str:
    return _method.load_average()


class GuestShell:
    """The root bash of systemd's debug shell on the VM's second serial port (QEMU: a Unix socket server)."""

    def __init__(self, path: Path, log: Path) -> None:
        self.path = path
        self.log = open(log, 'ab')  # pylint: disable=consider-using-with
        self.sock: socket.socket | None = None
        self.buffer = b''
        self.count = 0

    def _read(self, timeout: float) -> None:
        assert self.sock is not None
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return
        if not data:
            raise RuntimeError('the guest shell socket closed')
        self.log.write(data)
        self.log.flush()
        self.buffer += data

    def connect(self, timeout: float) -> None:
        """Connect and wait until bash answers (it starts at sysinit; keep pressing Enter)."""
        deadline = time.monotonic() + timeout
        while self.sock is None:
            try:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.connect(str(self.path))
                self.sock = sock
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
        while time.monotonic() < deadline:
            try:
                self.run('stty -echo; echo ready', timeout=5)
                return
            except TimeoutError:
                continue
        raise TimeoutError('no answer from the debug shell on ttyS1 within %d s' % timeout)

    def run(self, command: str, timeout: float = 600) -> tuple[int, str, float]:
        """Run ``command`` in the guest; returns (exit status, output, host seconds).  The markers are printed split, so
        the tty's echo of the command line cannot match them."""
        assert self.sock is not None
        self.count += 1
        begin, end = '@@B%d@@' % self.count, '@@E%d@@' % self.count
        line = "printf '%%s%%s\\n' '%s' '%s'; { %s ; } 2>&1; printf '%%s%%s %%s\\n' '%s' '%s' \"$?\"\n" % (
            begin[:3], begin[3:], command, end[:3], end[3:])
        self.buffer = b''
        started = time.monotonic()
        self.sock.sendall(line.encode())
        pattern = re.compile(re.escape(begin.encode()) + rb'\r?\n(.*?)' + re.escape(end.encode()) + rb' (\d+)', re.S)
        deadline = started + timeout
        while True:
            found = pattern.search(self.buffer)
            if found:
                output = found.group(1).decode(errors='replace').replace('\r', '')
                return int(found.group(2)), output, time.monotonic() - started
            if time.monotonic() > deadline:
                raise TimeoutError('guest command did not finish within %d s: %s' % (timeout, command))
            self._read(min(2.0, max(0.1, deadline - time.monotonic())))

    def check(self, command: str, timeout: float = 600) -> tuple[str, float]:
        status, output, seconds = self.run(command, timeout)
        if status != 0:
            raise RuntimeError('guest command failed (exit %d): %s\n%s' % (status, command, output))
        return output, seconds

    def output(self, command: str, timeout: float = 600) -> str:
        return self.check(command, timeout)[0]

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.log.close()


def stamps(output: str) -> dict[str, float]:
    """``NAME=<epoch seconds>`` lines printed by the peer script."""
    return {name: float(value) for name, value in re.findall(r'^(\w+)=(\d+\.\d+)$', output, re.M)}


def count_entries(mountpoint: str) -> str:
    """A shell command counting the tree's entries without /boot/grub (bootloader-linux fills it on ours after the image step)."""
    return 'find %s -xdev -path %s/boot/grub -prune -o -print | wc -l' % (mountpoint, mountpoint)


def peer_run(shell: GuestShell, blob_url: str, fresh: bool) -> dict[str, float]:
    """One download + tar xzf onto the peer partition, in the live system; seconds of each part (guest clock)."""
    if not fresh:
        shell.check('mkfs.ext4 -q -F -L %s "$(blkid -L %s)"' % (PEER_LABEL, PEER_LABEL), timeout=300)
    shell.check('mkdir -p /mnt/peer /run/peer-dl && mount "$(blkid -L %s)" /mnt/peer && mount -t tmpfs -o size=1G tmpfs /run/peer-dl'
                % PEER_LABEL)
    shell.check('sync; echo 3 > /proc/sys/vm/drop_caches')
    download = ("python3 -c 'import shutil, sys, urllib.request; r = urllib.request.urlopen(sys.argv[1]); "
                "f = open(sys.argv[2], \"wb\"); shutil.copyfileobj(r, f, 1 << 20); f.close()' %s /run/peer-dl/blob.tar.gz" % blob_url)
    script = ('echo t0=$(date +%%s.%%N); %s && echo t1=$(date +%%s.%%N) && tar xzf /run/peer-dl/blob.tar.gz -C /mnt/peer && '
              'echo t2=$(date +%%s.%%N) && umount /mnt/peer && echo t3=$(date +%%s.%%N)' % download)
    output, host_seconds = shell.check(script, timeout=1800)
    marks = stamps(output)
    verify = shell.output('echo s0=$(date +%s.%N); sha256sum /run/peer-dl/blob.tar.gz >/dev/null && echo s1=$(date +%s.%N)')
    sha = stamps(verify)
    entries = shell.output('mount -o ro "$(blkid -L %s)" /mnt/peer && %s; umount /mnt/peer; umount /run/peer-dl'
                           % (PEER_LABEL, count_entries('/mnt/peer')))
    return {'download_s': round(marks['t1'] - marks['t0'], 2), 'tar_xzf_s': round(marks['t2'] - marks['t1'], 2),
            'umount_s': round(marks['t3'] - marks['t2'], 2), 'total_s': round(marks['t3'] - marks['t0'], 2),
            'host_wall_s': round(host_seconds, 2), 'sha256sum_s (not in total)': round(sha['s1'] - sha['s0'], 2), 'entries': int(entries.split()[-1])}


def ours_from_journal(shell: GuestShell) -> dict[str, float]:
    """image-linux.service in the guest's journal: unit start -> unpacking -> unpacked -> finished (guest clock)."""
    output = shell.output('journalctl -u image-linux.service -o short-unix --no-pager')
    marks: dict[str, float] = {}
    for line in output.splitlines():
        match = re.match(r'^(\d+\.\d+) ', line)
        if not match:
            continue
        when = float(match.group(1))
        if 'Starting image-linux.service' in line or ('Starting' in line and 'unpack the OS root' in line):
            marks.setdefault('starting', when)
        elif 'unpacking ' in line:
            marks['unpacking'] = when
        elif 'unpacked manifest' in line:
            marks['unpacked'] = when
        elif 'Finished' in line:
            marks['finished'] = when
    figures = {}
    if 'unpacking' in marks and 'unpacked' in marks:
        figures['pull_and_unpack_s'] = round(marks['unpacked'] - marks['unpacking'], 2)
    if 'starting' in marks and 'unpacking' in marks:
        figures['unit_start_to_unpacking_s'] = round(marks['unpacking'] - marks['starting'], 2)
    if 'unpacked' in marks and 'finished' in marks:
        figures['unpacked_to_finished_s'] = round(marks['finished'] - marks['unpacked'], 2)
    entries = shell.output('mkdir -p /mnt/ours && mount -o ro "$(blkid -L root)" /mnt/ours && %s; umount /mnt/ours' % count_entries('/mnt/ours'))
    figures['entries'] = int(entries.split()[-1])
    return figures


def build_report(iso: node_images.MaintenanceIso, seconds: float) -> dict[str, t.Any]:
    result = iso.result
    rebuilt = list(result.get('rebuilt') or [])
    return {'path': str(iso.path), 'size_mib': round(iso.size / 2**20, 1), 'wall_s': round(seconds, 1),
            'found': 'cached (nothing rebuilt)' if not rebuilt else 'rebuilt: ' + ', '.join(rebuilt),
            'stage_seconds': dict(result.get('durations') or {}),
            'kernel_cmdline': result.get('kernel_cmdline')}


def blob_url(registry: Registry, host_reference: str) -> tuple[str, str, int]:
    """The guest URL of the reference's one layer, its digest and size (read from the registry's manifest)."""
    name, tag = host_reference.split('/', 1)[1].rsplit(':', 1)
    request = urllib.request.Request('%s/v2/%s/manifests/%s' % (registry.url, name, tag), headers={'Accept': MANIFEST_TYPES})
    with urllib.request.urlopen(request, timeout=30) as response:
        manifest = json.load(response)
    layers = manifest['layers']
    if len(layers) != 1:
        raise RuntimeError('expected one layer in %s, got %d' % (host_reference, len(layers)))
    digest = layers[0]['digest']
    return 'http://%s:%d/v2/%s/blobs/%s' % (GUEST_HOST, registry.port, name, digest), digest, int(layers[0]['size'])


def wait_for_end(vm: Vm, job: NodeJob, deadline: float) -> dict[str, t.Any]:
    end = time.monotonic() + deadline
    state = job.state()
    while state['status'] not in ('failed', 'succeeded') and time.monotonic() < end and vm.running:
        time.sleep(1)
        state = job.state()
    return state


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--firmware', choices=('bios', 'uefi'), default='bios')
    parser.add_argument('--accel', default=os.environ.get('L3METAL_QEMU_ACCEL', 'tcg'), help='QEMU accelerator (default tcg: KVM is broken here)')
    parser.add_argument('--memory-mib', type=int, default=2048)
    parser.add_argument('--disk-size', default='4G')
    parser.add_argument('--root-size', default='1900M', help='the root partition ours unpacks into; the peer partition gets the rest')
    parser.add_argument('--receiver-port', type=int, default=18490, help='the bench receiver (on the booted ISO\'s kernel command line)')
    parser.add_argument('--iso-port', type=int, default=node_images.DEFAULT_RECEIVER_PORT,
                        help='the receiver port of the lab ISO whose size and build time are reported (the e2e tests\')')
    parser.add_argument('--peer-runs', type=int, default=1)
    parser.add_argument('--deadline', type=float, default=1200, help='seconds from power-on to the job\'s end')
    parser.add_argument('--work-dir', type=Path, default=COLLECTION_ROOT / 'tests' / 'output' / 'bench' / 'maintenance_iso')
    args = parser.parse_args()
    if os.geteuid() != 0:
        print('run as root: the maintenance ISO is built as root (mmdebstrap, podman with its own store)')
        return 1
    work = args.work_dir
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    figures: dict[str, t.Any] = {'load_before': loadavg(), 'accel': args.accel, 'firmware': args.firmware, 'memory_mib': args.memory_mib}

    start = time.monotonic()
    lab_iso = node_images.maintenance_iso(args.iso_port, work_dir=work / 'ansible-lab')
    figures['iso'] = build_report(lab_iso, time.monotonic() - start)
    start = time.monotonic()
    cmdline = node_images.maintenance_iso_vars(args.receiver_port)['maintenance_iso_kernel_cmdline_extra'] + ' ' + DEBUG_SHELL_ARG
    bench_iso = node_images.maintenance_iso(args.receiver_port, kernel_cmdline_extra=cmdline, work_dir=work / 'ansible-bench')
    figures['bench_iso'] = build_report(bench_iso, time.monotonic() - start)
    print('ISO %s: %.1f MiB, %s, %.1f s (stages %s)'
          % (lab_iso.path.name, figures['iso']['size_mib'], figures['iso']['found'], figures['iso']['wall_s'], figures['iso']['stage_seconds']))
    print('bench ISO (+ %s): %s, %.1f s' % (DEBUG_SHELL_ARG, figures['bench_iso']['found'], figures['bench_iso']['wall_s']))

    registry = Registry(Path(tempfile.mkdtemp(prefix='bench-miso-registry-'))).start()
    receiver = Receiver(work / 'receiver', port=args.receiver_port,
                        extra_args=['--node-key-file', str(write_node_key(work)),
                                    '--public-url', node_images.guest_receiver_url(args.receiver_port)]).start()
    vm: Vm | None = None
    shell: GuestShell | None = None
    socket_dir = Path(tempfile.mkdtemp(prefix='bench-miso-'))
    try:
        host_reference = node_images.push_image(registry, node_images.linux_rootfs(), 'os-images/debian-lab', '1')
        reference = node_images.guest_reference(host_reference)
        url, digest, size = blob_url(registry, host_reference)
        figures['artifact'] = {'reference': reference, 'digest': digest, 'mib': round(size / 2**20, 1)}
        layout = bench_layout(args.root_size)
        job = NodeJob(receiver, linux_recipe(target_disk=DISK, oci_url=reference, partition_layout=layout,
                                             user_data=b64(node_images.linux_user_data())))
        medium = build_medium(work / 'task.iso', job.recipe(), 'iso')
        socket_path = socket_dir / 'shell.sock'   # not in the work dir: a Unix socket path has at most 107 bytes
        vm = Vm(work / 'vm', firmware=args.firmware, serial=job.serial, live_iso=bench_iso.path, task_iso=medium, disk_size=args.disk_size,
                memory_mib=args.memory_mib, accel=args.accel,
                extra_args=['-chardev', 'socket,id=shell0,path=%s,server=on,wait=off' % socket_path, '-serial', 'chardev:shell0'])
        print('booting (%s, %s, %d MiB); load %s' % (args.accel, args.firmware, args.memory_mib, figures['load_before']))
        vm.start()
        power_on = vm.started_at or time.time()
        state = wait_for_end(vm, job, args.deadline)
        events = receiver.events(job.job_id)
        (work / 'job.json').write_text(json.dumps({'job': state, 'events': events}, indent=2))
        if state['status'] != 'succeeded':
            print('job %s (failed step %s: %s) after %.0f s; last 30 console lines:\n%s' % (
                state['status'], state.get('failed_step'), state.get('reason'), vm.elapsed(), vm.tail(30)))
            return 1
        node = [event for event in events if event['source'] == 'node']
        done = next(event for event in events if event.get('type') == 'status' and event.get('status') == 'succeeded')
        figures['boot_to_first_webhook_s'] = round(event_time(node[0]) - power_on, 1)
        figures['steps_s'] = step_durations(events)
        figures['power_on_to_succeeded_s'] = round(event_time(done) - power_on, 1)
        missing = [step for step in STEPS if step not in figures['steps_s']]
        if missing:
            print('no started/done webhooks for %s' % missing)
            return 1

        shell = GuestShell(socket_path, work / 'vm' / 'shell.log')
        shell.connect(timeout=120)
        figures['ours_journal'] = ours_from_journal(shell)
        figures['peer'] = [peer_run(shell, url, fresh=index == 0) for index in range(args.peer_runs)]
    finally:
        if shell is not None:
            shell.close()
        if vm is not None:
            vm.stop()
            (work / 'console-tail.txt').write_text(vm.tail(200))
        receiver.stop()
        registry.stop()
        shutil.rmtree(registry.directory, ignore_errors=True)
        shutil.rmtree(socket_dir, ignore_errors=True)
    figures['load_after'] = loadavg()
    (work / 'figures.json').write_text(json.dumps(figures, indent=2))

    ours = figures['steps_s']['image-linux.service']
    peer = min(run['total_s'] for run in figures['peer'])
    print('artifact %s: %.1f MiB (%s)' % (figures['artifact']['reference'], figures['artifact']['mib'], digest))
    print('boot to first webhook (the dispatcher): %.1f s' % figures['boot_to_first_webhook_s'])
    for step in STEPS:
        print('  %-26s %6.1f s' % (step, figures['steps_s'][step]))
    print('power-on to succeeded: %.1f s (goal under 300 s with %s)' % (figures['power_on_to_succeeded_s'], args.accel))
    journal = figures['ours_journal']
    print('ours, image-linux.service (webhooks): %.1f s; in its journal: pull_and_unpack %s s, unit start to unpacking %s s, '
          'unpacked to finished %s s; %d entries on the root without /boot/grub'
          % (ours, journal.get('pull_and_unpack_s'), journal.get('unit_start_to_unpacking_s'), journal.get('unpacked_to_finished_s'), journal['entries']))
    for index, run in enumerate(figures['peer'], 1):
        print('peer %d (live system, same boot): download %.1f s + tar xzf %.1f s + umount %.1f s = %.1f s (host wall %.1f s); '
              'sha256sum apart %.1f s; %d entries'
              % (index, run['download_s'], run['tar_xzf_s'], run['umount_s'], run['total_s'], run['host_wall_s'], run['sha256sum_s (not in total)'],
                 run['entries']))
    print('ratio = ours / peer = %.2f  (image step %.1f s / download + tar xzf + umount %.1f s, best peer run; goal <= 1.0)' % (ours / peer, ours, peer))
    totals = [run['total_s'] for run in figures['peer']]
    print(_method.ratio_line('ours / peer', [ours] * len(totals), totals, note='ours once against each of the %d peer runs of the same boot' % len(totals)))
    if 'pull_and_unpack_s' in journal:
        best = min(run['download_s'] + run['tar_xzf_s'] for run in figures['peer'])
        print('ratio = ours / peer = %.2f  (for reference: pull_and_unpack alone, from the journal, %.1f s / download + tar xzf %.1f s, '
              'neither with its unmount)' % (journal['pull_and_unpack_s'] / best, journal['pull_and_unpack_s'], best))
    print('load average before %s, after %s; figures in %s' % (figures['load_before'], figures['load_after'], work / 'figures.json'))
    return 0


if __name__ == '__main__':
    sys.exit(main())
