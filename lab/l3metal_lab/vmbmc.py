# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""An emulated BMC with real machines behind it: sushy-tools' libvirt driver (through sushy_libvirt_adapter.py)
against a private libvirtd (libvirtd.py), one QEMU VM per system.

Same face as ``SushyEmulator`` (fake driver): ``url``, ``auth``, ``tls``, ``system_ids``, ``module_defaults()``,
``get()``/``slot()``/``system()``, the parsed access log.  Clients talk Redfish only, as to a real BMC::

    with VmBmc(work_dir, vms=[VmSpec(1, firmware='uefi')], vmedia=TWO_CDS, tls=True) as bmc:
        ... Redfish against bmc.url ...
        print(bmc.console(0).tail(50))          # the VM's serial console

What the BMC downloads on ``InsertMedia`` lands in ``<work_dir>/tmp/tmpXXXX/<name>`` (the emulator's TMPDIR)
and is what the VM's drive reads; eject or a replacing insert deletes it.  ``stop()`` leaves nothing running
and nothing in libvirt: emulator stopped, domains destroyed and undefined (with their NVRAM), downloads
deleted, the private libvirtd stopped and its state removed (unless it was passed in: then only this BMC's
domains go).  Disks and console logs stay in ``<work_dir>/vms/<name>/`` for checks after the run.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import typing as t
from pathlib import Path

import requests

from .libvirtd import LibvirtDaemon
from .services import Service
from .sushy import TWO_CDS, SushyEmulator, write_emulator_config
from .vm import OVMF_CODE, OVMF_VARS, Console, VmFiles, VmSpec, create_disk, domain_xml

ADAPTER = Path(__file__).with_name('sushy_libvirt_adapter.py')
TOOLS = ('libvirtd', 'virtlogd', 'virsh', 'qemu-system-x86_64', 'unshare', 'grub-mkrescue', 'mkfs.vfat', 'mcopy')


def missing_prerequisites(firmware: t.Iterable[str] = ('bios',)) -> list[str]:
    """What this machine lacks to run a VmBmc (empty when nothing): root, the tools, the firmware, the bindings.

    The libvirt Python bindings are ``libvirt-python`` from PyPI, built against Debian's libvirt-dev when
    ``make venv`` installs requirements-dev.txt (see docs/testing.md): the emulator runs with this interpreter.
    """
    missing = []
    if os.geteuid() != 0:
        missing.append('root (the private libvirtd runs as root in a mount namespace)')
    path = os.pathsep.join([os.environ.get('PATH', ''), '/usr/sbin', '/sbin'])
    missing += ['%s (Debian packages: tests/apt-packages.d/vm_lab.txt)' % tool for tool in TOOLS if not shutil.which(tool, path=path)]
    if 'uefi' in firmware:
        missing += ['%s (Debian ovmf)' % fd for fd in (OVMF_CODE, OVMF_VARS) if not os.path.exists(fd)]
    if importlib.util.find_spec('libvirt') is None or importlib.util.find_spec('libvirt_qemu') is None:
        missing.append('the libvirt Python bindings in %s (libvirt-python, requirements-dev.txt)' % sys.executable)
    return missing


class VmBmc(SushyEmulator):
    """sushy-tools + libvirt + one QEMU VM per system.  ``vms``: a count (BIOS VMs) or ``VmSpec``s."""

    def __init__(self, workdir: Path, vms: int | t.Sequence[VmSpec] = 1, vmedia: t.Mapping[str, t.Any] | None = None,
                 auth: tuple[str, str] | None = ('admin', 'secret'), tls: bool = False, libvirtd: LibvirtDaemon | None = None,
                 domain_type: str | None = None, env: t.Mapping[str, str] | None = None) -> None:
        self.specs = [VmSpec(i + 1) for i in range(vms)] if isinstance(vms, int) else list(vms)
        if domain_type:
            for spec in self.specs:
                spec.domain_type = domain_type
        systems = [{'uuid': s.uuid, 'name': s.name, 'power_state': 'Off', 'nics': []} for s in self.specs]
        super().__init__(workdir, systems=systems, vmedia=vmedia if vmedia is not None else TWO_CDS, auth=auth, tls=tls, power_delay=None)
        self.owns_libvirtd = libvirtd is None
        self.libvirtd = libvirtd or LibvirtDaemon(self.workdir / 'libvirt')
        self.defined: list[str] = []
        self.extra_env = dict(env or {})  # e.g. the lab's proxy to the guests' address (guestnet.py)

    # -- the machines ---------------------------------------------------------------------------------

    def files(self, index: int = 0) -> VmFiles:
        return VmFiles(self.workdir / 'vms' / self.specs[index].name)

    def console(self, index: int = 0) -> Console:
        return Console(self.files(index).console)

    def domain_xml(self, index: int = 0, inactive: bool = False) -> str:
        args = ['dumpxml', self.specs[index].name] + (['--inactive'] if inactive else [])
        return self.libvirtd.virsh(*args).stdout

    def reset(self, index: int, reset_type: str) -> None:
        """``ComputerSystem.Reset`` of system ``index`` through Redfish (for a harness's clean-up; tests of the code under
        test let the playbooks do it)."""
        response = requests.post(self.url + self.system_path(index) + '/Actions/ComputerSystem.Reset', json={'ResetType': reset_type},
                                 auth=self.auth, verify=self.ca_path or True, timeout=60)
        if response.status_code not in (200, 202, 204):
            raise RuntimeError('Reset %s of %s: %d %s' % (reset_type, self.specs[index].name, response.status_code, response.text[:300]))

    def downloads(self) -> list[Path]:
        """Files the BMC downloaded for inserted media and still holds."""
        return sorted(path for path in (self.workdir / 'tmp').glob('**/*') if path.is_file())

    def _define(self) -> None:
        for index, spec in enumerate(self.specs):
            files = self.files(index)
            create_disk(files.disk, spec.disk_gib, spec.disk_image)
            files.xml.write_text(domain_xml(spec, files, self.vmedia))
            self.libvirtd.virsh('define', str(files.xml))
            self.defined.append(spec.name)

    # -- lifecycle --------------------------------------------------------------------------------------

    def _write_config(self) -> Path:
        config: dict[str, t.Any] = {
            'SUSHY_EMULATOR_LISTEN_IP': '127.0.0.1',
            'SUSHY_EMULATOR_LISTEN_PORT': self.port,
            'SUSHY_EMULATOR_LIBVIRT_URI': self.libvirtd.uri,
            'SUSHY_EMULATOR_STATE_DIR': str(self.workdir / 'state'),
            'SUSHY_EMULATOR_VMEDIA_DEVICES': self.vmedia,
            # only this BMC's domains, by UUID and by name (a name redirects to the UUID)
            'SUSHY_EMULATOR_ALLOWED_INSTANCES': [s.uuid for s in self.specs] + [s.name for s in self.specs],
            # BootSourceOverrideMode UEFI: the 4M OVMF without secure boot (the stock default is the secboot build)
            'SUSHY_EMULATOR_BOOT_LOADER_MAP': {'UEFI': {'x86_64': OVMF_CODE}, 'Legacy': {'x86_64': None}},
            'SUSHY_EMULATOR_SECURE_BOOT_DISABLED_NVRAM': OVMF_VARS,
        }
        return write_emulator_config(self.workdir, config, self.auth, self.tls)

    def start(self) -> VmBmc:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / 'tmp').mkdir(exist_ok=True)
        try:
            if self.owns_libvirtd:
                self.libvirtd.start()
            self._define()
            config = self._write_config()
            env = dict(self.extra_env, TMPDIR=str(self.workdir / 'tmp'), PATH='/usr/bin:/bin', PYTHONUNBUFFERED='1')
            argv = [sys.executable, str(ADAPTER), '--config', str(config)]
            self.service = Service('sushy-emulator (libvirt)', argv, self.workdir / 'emulator.log', port=self.port,
                                   ready_url=self.url + '/redfish/v1/', env=env, ca_file=self.ca_path, ready_timeout=30).start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop()
        if self.libvirtd.service is not None and self.libvirtd.service.running:
            for name in self.defined:
                self.libvirtd.virsh('destroy', name, check=False)
                self.libvirtd.virsh('undefine', '--nvram', name, check=False)
        self.defined = []
        shutil.rmtree(self.workdir / 'tmp', ignore_errors=True)  # downloaded media
        if self.owns_libvirtd:
            self.libvirtd.stop()
            self.libvirtd.remove()

    def __enter__(self) -> VmBmc:
        return self.start()

    # -- what is left ---------------------------------------------------------------------------------

    def leftovers(self) -> dict[str, t.Any]:
        """Processes and files this BMC should not leave behind after ``stop()`` (empty when clean)."""
        found: dict[str, t.Any] = {}
        names = [s.name for s in self.specs]
        qemu = []
        for proc in Path('/proc').iterdir():
            if not proc.name.isdigit():
                continue
            try:
                cmdline = (proc / 'cmdline').read_bytes().replace(b'\0', b' ').decode(errors='replace')
            except OSError:
                continue
            if ('qemu-system' in cmdline and any('guest=%s,' % n in cmdline for n in names)) or str(self.libvirtd.state_dir) in cmdline \
                    or (str(ADAPTER) in cmdline and str(self.workdir) in cmdline):
                qemu.append('%s: %s' % (proc.name, cmdline[:160]))
        if qemu:
            found['processes'] = qemu
        if self.downloads():
            found['downloads'] = [str(p) for p in self.downloads()]
        nvram = [str(self.files(i).nvram) for i in range(len(self.specs)) if self.files(i).nvram.exists()]
        if nvram:
            found['nvram'] = nvram
        if self.owns_libvirtd and self.libvirtd.state_dir.exists():
            found['libvirt_state'] = str(self.libvirtd.state_dir)
        return found


__all__ = ['VmBmc', 'VmSpec', 'missing_prerequisites']
