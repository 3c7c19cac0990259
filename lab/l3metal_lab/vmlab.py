# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A provisioning lab whose servers are QEMU VMs: nothing on the node side is simulated.

On 127.0.0.1: the real webhook receiver (the maintenance ISO in its media directory) which also serves the images the
nodes install from its embedded OCI registry (``/v2/`` on the same port as the webhooks and the media, an OCI image
layout in the lab's work dir, pushed with the collection's ``oci_artifact`` and a push user; pull is open), and the VM
BMC (vmbmc.py: sushy-tools' libvirt driver + the lab adapter, one QEMU VM per system, TCG unless KVM really works).
``registry='separate'`` puts the images in a Debian ``docker-registry`` of their own instead, as a site with a
dedicated registry does; ``registry='both'`` starts both (``push(..., registry='separate')`` picks one).  The
playbooks get an inventory (``write_inventory``) and talk to the BMC only through Redfish; the VMs boot the inserted
media, the maintenance OS provisions their disks and reports to the receiver, the installed system boots from the
disk.  The servers reach the host's services at 10.0.2.2 (QEMU user networking); the one simulated piece is the BMC's
route to that address (guestnet.py)::

    with VmLab(work, [vm_server(1), vm_server(2, firmware='uefi')], vmlab_images.node_images()) as lab:
        reference = lab.push('linux_rootfs', 'os-images/debian-lab:1')     # as the VMs pull it: 10.0.2.2:<receiver port>/...
        inventory = lab.write_inventory(provision_oci_url=reference, provision_target_disk='/dev/vda')
        ... ansible-playbook -i inventory playbooks/provision_linux.yml ...
        lab.console(0).wait_for('L3METAL-CLOUD-INIT-RAN', 300)
        lab.blob_pulls('os-images/debian-lab')                             # the receiver's access log: the node's GETs
"""

from __future__ import annotations

import json
import re
import shutil
import typing as t
from pathlib import Path

from . import accel
from .embedded_registry import EmbeddedRegistry
from .guestnet import GUEST_HOST, GuestAddressProxy
from .lab import Lab, serial
from .playbook import localhost_play, run_playbook
from .node_images import CLOUD_INIT_MARKER, WINDOWS_LAYOUT, port_is_free
from .receiver import write_node_key
from .registry import Registry
from .sushy import TWO_CDS
from .vm import Console, VmSpec
from .vmbmc import VmBmc
from .vmlab_images import NodeImages

__all__ = ['CLOUD_INIT_MARKER', 'LINUX_LAYOUT', 'REGISTRIES', 'TARGET_DISK', 'WINDOWS_LAYOUT', 'BlobPull', 'VmLab', 'parse_blob_pulls', 'user_data',
           'vm_server']

# The disk layout of the lab's Linux recipes: GRUB needs a BIOS boot partition on GPT for SeaBIOS, the ESP for OVMF
# (node_images.LINUX_LAYOUT plus the mount points: the installed system's fstab, checked by diskcheck).
LINUX_LAYOUT: list[dict[str, t.Any]] = [
    {'size': '1M', 'type_guid': 'ef02'},
    {'size': '128M', 'type_guid': 'ef00', 'format': 'vfat', 'label': 'ESP', 'mountpoint': '/boot/efi'},
    {'size': '16M', 'type_guid': '8300', 'format': 'vfat', 'label': 'cidata'},
    {'size': '100%', 'type_guid': '8300', 'format': 'ext4', 'label': 'root', 'mountpoint': '/'},
]
TARGET_DISK = '/dev/vda'  # the VMs' disk is virtio
# Where the lab keeps the images the nodes pull: the receiver's /v2/ (single-service mode, docs/registry.md), a Debian
# docker-registry beside it (a site with a dedicated registry), or both at once (push picks).
REGISTRIES = ('embedded', 'separate', 'both')
PASSWORD_VARIABLE = 'L3METAL_LAB_OCI_PASSWORD'  # how push hands the push password to the play (not written to its files)
# One line of aiohttp's default access log format: %a %t "%r" %s %b "%{Referer}i" "%{User-Agent}i"
_ACCESS_LINE = re.compile(r'(?P<client>\S+) \[[^\]]+\] "(?P<method>[A-Z]+) (?P<path>\S+) [^"]*" (?P<status>\d{3}) (?P<bytes>-|\d+) '
                          r'"[^"]*" "(?P<agent>[^"]*)"')


class BlobPull(t.NamedTuple):
    """A blob request the receiver's ``/v2/`` answered (from its access log)."""
    method: str
    path: str
    status: int
    bytes: int
    agent: str


def user_data(marker: str = CLOUD_INIT_MARKER, power_off: bool = False) -> str:
    """cloud-init user-data that writes a line with the instance id (the job id, from the config drive) to the console;
    ``power_off``: then shuts the system down cleanly (cloud-init's power_state; the lab's image has no logind, so an
    ACPI power button, Redfish GracefulShutdown, is not acted on) - its disk can be checked from the host afterwards."""
    text = ('#cloud-config\nhostname: {{ inventory_hostname }}\nruncmd:\n'
            '  - [sh, -c, "echo %s host=$(hostname) instance=$(cat /var/lib/cloud/data/instance-id) > /dev/ttyS0"]\n' % marker)
    if power_off:
        text += 'power_state:\n  mode: poweroff\n  delay: now\n  message: l3metal lab - cloud-init done, powering off\n'
    return text


def vm_server(index: int, firmware: str = 'bios', memory_mib: int = 2048, vcpus: int = 1, disk_gib: float = 3.0) -> VmSpec:
    """A server of the lab: ``index`` (1-based) names it (l3m-vm-NN) and gives it the serial the inventory uses."""
    return VmSpec(index, firmware=firmware, memory_mib=memory_mib, vcpus=vcpus, disk_gib=disk_gib, serial=serial(index - 1))


def parse_blob_pulls(log: str, repository: str | None = None) -> list[BlobPull]:
    """The ``/v2/.../blobs/...`` GETs and HEADs in a receiver log (``--access-log`` lines), of ``repository`` or all."""
    prefix = '/v2/%s/blobs/' % repository if repository is not None else '/v2/'
    pulls = []
    for line in log.splitlines():
        found = _ACCESS_LINE.search(line)
        if found and found['method'] in ('GET', 'HEAD') and found['path'].startswith(prefix) and '/blobs/' in found['path']:
            pulls.append(BlobPull(found['method'], found['path'], int(found['status']), int(found['bytes'].replace('-', '0')), found['agent']))
    return pulls


class VmLab(Lab):
    """Receiver (with ``/v2/``) + VM BMC with ``vms``; ``Lab``'s inventory and read-back helpers apply (index 0 = vms[0]).

    ``registry`` (one of REGISTRIES): where ``push`` puts the images; ``self.registry`` is the default target,
    ``self.embedded`` / ``self.separate`` the registries started (``None`` when not)."""

    def __init__(self, work_dir: Path, vms: t.Sequence[VmSpec], images: NodeImages, vmedia: t.Mapping[str, t.Any] | None = None,
                 api_token: str | None = None, domain_type: str | None = None, registry: str = 'embedded') -> None:
        work_dir = Path(work_dir)
        if registry not in REGISTRIES:
            raise ValueError('registry=%r: use one of %s' % (registry, ', '.join(REGISTRIES)))
        for position, spec in enumerate(vms):
            if spec.index != position + 1:
                raise ValueError('vms[%d] has index %d: give the VMs indexes 1, 2, ... in order (serials follow them)' % (position, spec.index))
        self.images = images
        self.proxy = GuestAddressProxy()
        self.domain_type = domain_type or accel.probe('uefi' if any(s.firmware == 'uefi' for s in vms) else 'bios').domain_type
        bmc = VmBmc(work_dir / 'bmc', vms=vms, vmedia=vmedia if vmedia is not None else TWO_CDS, domain_type=self.domain_type,
                    env=self.proxy.client_env())
        # the receiver on the port the ISO's kernel command line names, with the site node key baked into the ISO; its
        # access log shows which requests reached /v2/ (blob_pulls)
        work_dir.mkdir(parents=True, exist_ok=True)
        node_key = write_node_key(work_dir, images.iso.node_key)
        self.embedded = EmbeddedRegistry(work_dir / 'oci', images.receiver_port) if registry in ('embedded', 'both') else None
        self.separate = Registry(work_dir / 'registry') if registry in ('separate', 'both') else None
        receiver_args = ['--node-key-file', str(node_key), '--access-log'] + (self.embedded.receiver_args() if self.embedded else [])
        super().__init__(work_dir, bmc=bmc, maintenance_iso=images.maintenance_iso, api_token=api_token, receiver_port=images.receiver_port,
                         receiver_args=receiver_args)
        self.vm_bmc = bmc
        self.registry: EmbeddedRegistry | Registry = self.embedded or t.cast(Registry, self.separate)

    def start(self) -> VmLab:
        # The receiver's port is fixed (the ISO names it): a receiver of another lab there would answer the readiness
        # probe of ours, which then exits on 'address already in use' unnoticed.
        port_is_free(self.receiver.port)
        self.proxy.start()
        try:
            if self.separate is not None:
                self.separate.start()
            super().start()
        except BaseException:
            if self.separate is not None:
                self.separate.stop()
            self.proxy.stop()
            raise
        return self

    def stop(self) -> None:
        try:
            super().stop()
        finally:
            if self.separate is not None:
                self.separate.stop()
            self.proxy.stop()

    def __enter__(self) -> VmLab:
        return self.start()

    # -- what a playbook needs -----------------------------------------------------------------

    @property
    def guest_receiver_url(self) -> str:
        """The receiver as the servers (and, in this lab, their BMC) reach it."""
        return 'http://%s:%d' % (GUEST_HOST, self.receiver.port)

    def group_vars(self) -> dict[str, t.Any]:
        group = super().group_vars()
        group['provision_public_url'] = self.guest_receiver_url
        return group

    def host_vars(self, index: int) -> dict[str, t.Any]:
        found = super().host_vars(index)
        found['bmc_timeout'] = 60  # InsertMedia downloads the medium within the request (the maintenance ISO: ~300 MiB)
        return found

    def push(self, image: str, repository: str, work_dir: Path | None = None, registry: str | None = None) -> str:
        """Push ``images.<image>`` (a file) with the collection's ``oci_artifact`` to the lab's registry (``registry``:
        'embedded' or 'separate', default ``self.registry``); the reference the servers pull it by
        (``10.0.2.2:<port>/<repository>``).  The embedded registry's push password reaches the play through the
        environment (never written to the play's files) and is the module's ``no_log`` option: the run is checked
        not to show it."""
        target = self._registry(registry)
        path = getattr(self.images, image)
        options: dict[str, t.Any] = {'reference': '%s/%s' % (target.host, repository), 'files': [str(path)], 'insecure': True}
        env = {}
        if target.password:
            options.update(username=target.username, password="{{ lookup('ansible.builtin.env', '%s') }}" % PASSWORD_VARIABLE)
            env[PASSWORD_VARIABLE] = target.password
        play = localhost_play([{'name': 'Publish %s' % path.name, 'l3metal.provision.oci_artifact': options}], name='publish')
        work_dir = work_dir or self.work_dir / 'publish'
        result = run_playbook(play, work_dir, env=env).assert_ok()
        if target.password:
            shown = [name for name, text in [('stdout', result.stdout), ('stderr', result.stderr)]
                     + [(p.name, p.read_text(errors='replace')) for p in work_dir.iterdir() if p.is_file()] if target.password in text]
            if shown:
                raise AssertionError('the push password shows in %s of %s' % (', '.join(shown), work_dir))
        return '%s:%d/%s' % (GUEST_HOST, target.port, repository)

    def _registry(self, name: str | None) -> EmbeddedRegistry | Registry:
        if name is None:
            return self.registry
        found = {'embedded': self.embedded, 'separate': self.separate}.get(name)
        if found is None:
            raise ValueError('registry=%r: this lab has %s' % (name, ', '.join(n for n, r in (('embedded', self.embedded), ('separate', self.separate)) if r)))
        return found

    def blob_pulls(self, repository: str | None = None) -> list[BlobPull]:
        """The blob GETs and HEADs the receiver's ``/v2/`` answered (of ``repository``, default all), from its access log."""
        if not self.receiver.log_path.exists():
            return []
        return parse_blob_pulls(self.receiver.log_path.read_text(errors='replace'), repository)

    # -- the VMs ---------------------------------------------------------------------------------

    def console(self, index: int) -> Console:
        return self.vm_bmc.console(index)

    def disk(self, index: int) -> Path:
        return self.vm_bmc.files(index).disk

    def power_off(self, index: int) -> None:
        """Stop a VM through the BMC (ForceOff), as an operator would: a test's clean-up, not the code under test."""
        self.vm_bmc.reset(index, 'ForceOff')

    def save_artifacts(self, dest: Path) -> Path:
        """Consoles, the receiver's job records (job and events per job), the BMC's and QEMU's logs, the embedded registry's
        ``index.json`` (``oci-index.json``), into ``dest``."""
        dest.mkdir(parents=True, exist_ok=True)
        for index, spec in enumerate(self.vm_bmc.specs):
            console = self.vm_bmc.files(index).console
            if console.exists():
                shutil.copyfile(console, dest / ('%s-console.log' % spec.name))
            qemu_log = self.vm_bmc.libvirtd.qemu_log(spec.name)
            if qemu_log.exists():
                shutil.copyfile(qemu_log, dest / ('%s-qemu.log' % spec.name))
        records = []
        if self.receiver.service is not None and self.receiver.service.running:
            for index in range(len(self.vm_bmc.specs)):
                for job in self.jobs(index):
                    records.append({'job': self.receiver.get_job(job['job_id']), 'events': self.receiver.events(job['job_id'])})
        (dest / 'receiver-jobs.json').write_text(json.dumps(records, indent=2))
        if self.embedded is not None and (self.embedded.layout / 'index.json').exists():
            shutil.copyfile(self.embedded.layout / 'index.json', dest / 'oci-index.json')
        for log in (self.vm_bmc.workdir / 'emulator.log', self.receiver.log_path, self.vm_bmc.libvirtd.log_path):
            if log.exists():
                shutil.copyfile(log, dest / log.name)
        return dest
