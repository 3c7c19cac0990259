# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A provisioning lab on 127.0.0.1: the real webhook receiver, a sushy-tools emulator whose systems stand for the
servers, a stand-in maintenance ISO served by the receiver, an inventory for the playbooks, and simulated nodes.

Used by ``make demo`` (``demo/run.py``) and by the playbook tests (fixture ``provisioning_lab``)::

    with Lab(work_dir, nodes=2) as lab:
        inventory = lab.write_inventory(provision_oci_url='registry.example.com/os/rootfs:1.0')
        lab.simulate(0)                                      # node-01 succeeds
        lab.simulate(1, fail_step='bootloader-linux.service')
        run ansible-playbook -i inventory playbooks/provision_linux.yml ...
"""

from __future__ import annotations

import os
import shutil
import typing as t
from pathlib import Path

import yaml

from ansible_collections.l3metal.provision.plugins.module_utils import _task_media

from .node_simulator import SimulatedNode
from .playbook import PlaybookResult, TaskResult
from .receiver import Receiver
from .sushy import TWO_CDS, SushyEmulator, fake_system

MAINTENANCE_ISO = 'maintenance.iso'
STAND_IN_README = b'''l3metal stand-in maintenance ISO.

The real maintenance OS is a bootc image (maintenance_os/Containerfile) that cannot be built here.
This ISO only gives the emulated BMC something to download for virtual CD 1; the node side is played
by l3metal_lab.node_simulator with the real dispatcher and webhook client.
'''


def serial(index: int) -> str:
    return 'DEMO-%04d' % (index + 1)


def stand_in_maintenance_iso(path: Path) -> Path:
    """A tiny ISO (task_iso's ISO code) standing in for the bootc maintenance ISO."""
    path.write_bytes(_task_media.build_iso([_task_media.MediaFile('README.txt', STAND_IN_README)], volume_label='L3M_MAINT'))
    return path


class Lab:
    """Receiver + emulator (``nodes`` systems, all ``Off``) + maintenance ISO; ``stop()`` ends everything it started.

    ``bmc`` replaces the fake-driver emulator (the VM lab passes a ``VmBmc``), ``maintenance_iso`` the stand-in ISO
    (it is linked into the receiver's media directory); ``receiver_port`` (default: a free one) and ``receiver_args``
    go to the receiver."""

    def __init__(self, work_dir: Path, nodes: int = 2, vmedia: t.Mapping[str, t.Any] | None = None, api_token: str | None = None,
                 bmc: SushyEmulator | None = None, maintenance_iso: Path | None = None, receiver_port: int | None = None,
                 receiver_args: t.Sequence[str] = ()) -> None:
        self.work_dir = Path(work_dir)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.receiver = Receiver(self.work_dir / 'receiver', api_token=api_token, port=receiver_port, extra_args=receiver_args)
        self.bmc = bmc or SushyEmulator(self.work_dir / 'bmc', systems=[fake_system(i + 1) for i in range(nodes)],
                                        vmedia=vmedia if vmedia is not None else TWO_CDS, power_delay=0)
        self.maintenance_iso = maintenance_iso
        self.nodes: list[SimulatedNode] = []
        self._bmc_mark = 0

    def _place_maintenance_iso(self) -> None:
        target = self.receiver.media_dir / MAINTENANCE_ISO
        if self.maintenance_iso is None:
            stand_in_maintenance_iso(target)
            return
        target.unlink(missing_ok=True)
        try:
            os.link(self.maintenance_iso, target)  # no copy of a few hundred MiB when both are on one file system
        except OSError:
            shutil.copyfile(self.maintenance_iso, target)

    def start(self) -> Lab:
        self._place_maintenance_iso()
        self.receiver.start()
        try:
            self.bmc.start()
        except BaseException:
            self.receiver.stop()
            raise
        self._bmc_mark = self.bmc.mark()  # after the harness's own readiness probe
        return self

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        self.bmc.stop()
        self.receiver.stop()

    def __enter__(self) -> Lab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what a playbook needs -----------------------------------------------------------------

    @property
    def maintenance_iso_url(self) -> str:
        return '%s/media/%s' % (self.receiver.url, MAINTENANCE_ISO)

    def host_name(self, index: int) -> str:
        return str(self.bmc.systems[index]['name'])

    def host_vars(self, index: int) -> dict[str, t.Any]:
        """What an inventory says about one server: its BMC and its serial number."""
        assert self.bmc.auth is not None
        return {
            'bmc_address': self.bmc.url,
            'bmc_username': self.bmc.auth[0],
            'bmc_password': self.bmc.auth[1],
            'bmc_system_id': self.bmc.system_ids[index],
            'bmc_timeout': 10,
            'server_serial': serial(index),
        }

    def group_vars(self) -> dict[str, t.Any]:
        group: dict[str, t.Any] = {
            'provision_receiver_url': self.receiver.url,
            'provision_maintenance_iso_url': self.maintenance_iso_url,
        }
        if self.receiver.api_token:
            group['provision_receiver_api_token'] = self.receiver.api_token
        return group

    def write_inventory(self, hosts: t.Sequence[int] | None = None, path: Path | None = None, group: str = 'baremetal',
                        host_vars: t.Mapping[int, t.Mapping[str, t.Any]] | None = None, **group_vars: t.Any) -> Path:
        """A YAML inventory: group ``group`` with the emulated servers ``hosts`` (default all)."""
        indices = range(len(self.bmc.systems)) if hosts is None else hosts
        inventory = {group: {
            'hosts': {self.host_name(i): dict(self.host_vars(i), **(host_vars or {}).get(i, {})) for i in indices},
            'vars': dict(self.group_vars(), **group_vars),
        }}
        path = path or self.work_dir / 'inventory.yml'
        path.write_text(yaml.safe_dump(inventory, sort_keys=False))
        return path

    def simulate(self, index: int, **options: t.Any) -> SimulatedNode:
        """Start the simulated server behind emulated system ``index`` (see ``SimulatedNode`` for the options)."""
        node = SimulatedNode(self.bmc, index, self.work_dir / ('node-%d' % (index + 1)), **options).start()
        self.nodes.append(node)
        return node

    # -- what happened -------------------------------------------------------------------------

    def jobs(self, index: int) -> list[dict[str, t.Any]]:
        """Every job of server ``index``, newest first."""
        return self.receiver.list_jobs(serial=serial(index))

    def slots(self, index: int) -> dict[str, dict[str, t.Any]]:
        members = self.bmc.get(self.bmc.system_path(index) + '/VirtualMedia')['Members']
        return {slot['Id']: slot for slot in (self.bmc.get(m['@odata.id']) for m in members)}

    def inserted(self, index: int) -> dict[str, str]:
        return {slot_id: slot['Image'] for slot_id, slot in self.slots(index).items() if slot.get('Inserted')}

    def system(self, index: int) -> dict[str, t.Any]:
        return self.bmc.system(index)

    def bmc_requests(self) -> list[str]:
        """Every request the BMC served since the lab started (not the harness's readiness probe)."""
        return ['%s %s' % (r.method, r.path) for r in self.bmc.requests_since(self._bmc_mark)]

    def changing_requests(self) -> list[str]:
        """Every request to the BMC that could change something (not GET/HEAD)."""
        return [r for r in self.bmc_requests() if not r.startswith(('GET ', 'HEAD '))]


def role_task(run: PlaybookResult, name: str, host: str | None = None) -> TaskResult:
    """The last result of the task called ``name`` (also as ``<role> : name``, as roles' tasks are recorded), for ``host``."""
    found = [task for task in run.tasks if (task.task == name or task.task.endswith(' : ' + name)) and host in (None, task.host)]
    if not found:
        raise KeyError('no task %r ran%s; tasks: %s\n%s' % (name, ' for %s' % host if host else '', [task.task for task in run.tasks], run.output))
    return found[-1]
