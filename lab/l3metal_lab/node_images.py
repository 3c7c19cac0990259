# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a lab VM boots and installs, built (or reused) once per checkout: the maintenance ISO, an OS image, a WIM, firmware.

Everything is cached under the checkout's ``.cache/`` (``$L3METAL_CACHE_DIR`` overrides) and keyed on its inputs:

- ``maintenance_iso(receiver_port)``: the ISO through the real role ``l3metal.provision.maintenance_iso`` (ansible-playbook;
  the module's own cache makes a second call cost a second).  Site settings of the lab: the site node key
  ``l3metal_lab.receiver.NODE_KEY`` (start the receiver with ``--node-key-file``), plain HTTP to the registry, and the
  receiver for pre-flight failures on the kernel command line (``l3metal.receiver=http://10.0.2.2:<port>``): the port is
  an input of the ISO stage only, so another port costs a GRUB image (seconds), not a squashfs.  The default port is
  ``DEFAULT_RECEIVER_PORT`` (18480), or ``$L3METAL_E2E_RECEIVER_PORT``; ``e2e_receiver_port()`` fails clearly when it is busy.
- ``linux_rootfs()``: a small Debian trixie root file system WITH kernel, GRUB (pc + efi), cloud-init (NoCloud only) and
  systemd-networkd, as the ``.tar.gz`` image-linux unpacks; ``push_linux_image(registry)`` pushes it with the
  collection's push code (what ``oci_artifact`` does) and returns the reference as the guest sees it.
- ``windows_wim()`` (``write_windows_wim``): a real two-image WIM made with wimlib (index 1 a decoy, index 2 the one to apply), a Windows-like
  tree with boot files (``Windows/Boot/EFI/bootmgfw.efi``, ``BCD``); ``push_windows_wim(registry)``.
- ``firmware_image(directory)``: a firmware file and its sha256 for ``firmware_url``; the lab's tool image runs
  ``FIRMWARE_FLASH_COMMAND`` (a stand-in vendor tool: sha256sum of the file, so the console shows it ran on that file).

Simulated here, and labelled so: the "vendor flash tool" (sha256sum), and the Windows tree (no real Windows; the WIM is
real, its files are not Windows').
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import socket
import subprocess
import typing as t
from pathlib import Path

from l3metal_oci import push as _oci_push

from .paths import SOURCE_ROOT
from .playbook import localhost_play, run_playbook
from .qemu import GUEST_HOST
from .receiver import NODE_KEY
from .registry import Registry

DEFAULT_RECEIVER_PORT = 18480
RECEIVER_PORT_VARIABLE = 'L3METAL_E2E_RECEIVER_PORT'
SUITE = 'trixie'
ISO_NAME = 'l3metal-lab-maintenance'
# The lab's stand-in for a vendor flash tool (simulated): prints the firmware file's sha256 and name on the console.
FIRMWARE_FLASH_COMMAND = '/usr/bin/sha256sum {firmware}'
FIRMWARE = b'L3METAL LAB FIRMWARE IMAGE v1 (not real firmware)\n' * 4096
CLOUD_INIT_MARKER = 'L3METAL-CLOUD-INIT-RAN'
# This machine's podman needs runc (crun fails on its hybrid cgroups) and ulimits within its hard limits (ENVIRONMENT-NOTES §6).
CONTAINERS_CONF = '''# podman settings of this lab machine (l3metal_lab.node_images): runc, ulimits within the hard limits, no bridge network
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
netns = "none"
[engine]
runtime = "runc"
'''


class LabImageError(RuntimeError):
    """A lab image could not be built; the message holds the end of the build's output."""


def cache_root() -> Path:
    """The checkout's .cache/ (kept across ``make layout``), or ``$L3METAL_CACHE_DIR``."""
    configured = os.environ.get('L3METAL_CACHE_DIR')
    return Path(configured) if configured else SOURCE_ROOT / '.cache'


def _key(*parts: t.Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def host_mirror() -> str:
    """The mirror the host's apt sources use (what the maintenance_iso module defaults to)."""
    from ansible_collections.l3metal.provision.plugins.module_utils._maintenance_iso.settings import host_mirror as mirror
    return mirror()


# -- the receiver port baked into the ISO's kernel command line ------------------------------------------------------------
def port_is_free(port: int) -> None:
    """Raise ``LabImageError`` naming ``$L3METAL_E2E_RECEIVER_PORT`` when something listens on 127.0.0.1:``port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(('127.0.0.1', port))
        except OSError as exc:
            raise LabImageError('port %d on 127.0.0.1 is busy (%s): the lab\'s receiver needs it, because the maintenance ISO\'s '
                                'kernel command line names it. Stop what listens there, or set %s to a free port (the ISO is then '
                                'rebuilt with it: its GRUB stage only, seconds)' % (port, exc.strerror, RECEIVER_PORT_VARIABLE)) from None


def e2e_receiver_port() -> int:
    """``$L3METAL_E2E_RECEIVER_PORT`` or 18480; fails when something already listens there (a lab that was not stopped)."""
    raw = os.environ.get(RECEIVER_PORT_VARIABLE, str(DEFAULT_RECEIVER_PORT))
    try:
        port = int(raw)
    except ValueError:
        raise LabImageError('%s=%r is not a port number' % (RECEIVER_PORT_VARIABLE, raw)) from None
    port_is_free(port)
    return port


def guest_receiver_url(port: int) -> str:
    return 'http://%s:%d' % (GUEST_HOST, port)


def guest_reference(host_reference: str) -> str:
    """An OCI reference on the host's 127.0.0.1 as the guest names it (user networking: 10.0.2.2)."""
    return host_reference.replace('127.0.0.1:', GUEST_HOST + ':', 1) if host_reference.startswith('127.0.0.1:') else host_reference


# -- the maintenance ISO -----------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class MaintenanceIso:
    path: Path
    sha256: str
    size: int
    receiver_url: str          # the site receiver the ISO's kernel command line names (pre-flight failures)
    node_key: str              # the site node key inside it (the receiver's --node-key-file)
    changed: bool              # built by this call (False: found up to date)
    result: dict[str, t.Any]   # the module's whole result (stages, durations, kernel_cmdline, ...)


def containers_conf(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / 'containers.conf'
    if not path.exists() or path.read_text() != CONTAINERS_CONF:
        path.write_text(CONTAINERS_CONF)
    return path


def maintenance_iso_vars(receiver_port: int, cache: Path | None = None, force: bool = False, **overrides: t.Any) -> dict[str, t.Any]:
    """The role variables of the lab's ISO (``overrides`` replace any, by their name without the ``maintenance_iso_`` prefix)."""
    root = cache or cache_root()
    variables = {
        'maintenance_iso_dest': str(root / 'maintenance-iso' / 'out'),
        'maintenance_iso_cache_dir': str(root / 'maintenance-iso' / 'cache'),
        'maintenance_iso_name': ISO_NAME,
        'maintenance_iso_site': {'node_key': NODE_KEY, 'registry_insecure': True},
        'maintenance_iso_kernel_cmdline_extra': 'console=ttyS0,115200n8 systemd.journald.forward_to_console=1 l3metal.receiver=%s'
                                                % guest_receiver_url(receiver_port),
        'maintenance_iso_tool_build_args': {'firmware-flasher': {'FLASH_COMMAND': FIRMWARE_FLASH_COMMAND}},
        'maintenance_iso_containers_conf': str(containers_conf(root / 'maintenance-iso')),
        'maintenance_iso_force': force,
    }
    variables.update({'maintenance_iso_' + name: value for name, value in overrides.items()})
    return variables


def maintenance_iso(receiver_port: int | None = None, *, cache: Path | None = None, force: bool = False, check: bool = False,
                    work_dir: Path | None = None, timeout: float = 1800, **overrides: t.Any) -> MaintenanceIso:
    """Build or reuse the lab's maintenance ISO through the real role (ansible-playbook, the real module); seconds when cached.

    ``receiver_port`` defaults to ``e2e_receiver_port()`` (18480 or $L3METAL_E2E_RECEIVER_PORT, checked free).  ``check``
    runs the play in check mode (nothing built; ``path`` is where the ISO would be, ``sha256`` empty when it is not there).
    """
    port = receiver_port if receiver_port is not None else e2e_receiver_port()
    root = cache or cache_root()
    work = work_dir or root / 'maintenance-iso' / 'ansible'
    variables = maintenance_iso_vars(port, root, force, **overrides)
    Path(variables['maintenance_iso_dest']).mkdir(parents=True, exist_ok=True)
    play = localhost_play([{'name': 'maintenance ISO', 'ansible.builtin.include_role': {'name': 'l3metal.provision.maintenance_iso'}},
                           {'name': 'report', 'ansible.builtin.debug': {'var': 'maintenance_iso_result'}}])
    outcome = run_playbook(play, work, extra_vars=variables, check=check, timeout=timeout)
    if outcome.rc != 0:
        raise LabImageError('the maintenance_iso role failed\n' + outcome.output)
    result = outcome.task('l3metal.provision.maintenance_iso : Build the maintenance ISO (nothing is built when no input changed)').result
    return MaintenanceIso(path=Path(result['path']), sha256=result.get('sha256') or '', size=result.get('size') or 0,
                          receiver_url=guest_receiver_url(port), node_key=NODE_KEY, changed=bool(result.get('changed')), result=result)


# -- the Linux OS image -------------------------------------------------------------------------------------------------------
LINUX_PACKAGES = ('linux-image-amd64', 'initramfs-tools', 'systemd-sysv', 'udev', 'kmod', 'e2fsprogs', 'grub-pc-bin',
                  'grub-efi-amd64-bin', 'grub2-common', 'cloud-init')
# Only what a QEMU VM needs from the kernel's modules (virtio, storage, file systems, network core): a smaller image.
LINUX_KEEP_MODULES = ('drivers/virtio', 'drivers/block', 'drivers/scsi', 'drivers/ata', 'drivers/nvme', 'drivers/net/virtio_net.ko*',
                      'drivers/net/net_failover.ko*', 'drivers/char', 'drivers/input', 'drivers/hid', 'drivers/cdrom', 'drivers/md', 'fs',
                      'lib', 'crypto', 'net/core', 'net/ipv4', 'net/ipv6', 'net/packet', 'net/unix', 'net/netfilter', 'arch')
LINUX_RELEASE_FILE = '/etc/l3m-image-release'
# What the installed system needs to come up: GRUB on the serial console; cloud-init with NoCloud only (the config
# drive), systemd-networkd with DHCP (ifupdown held the prototype's boot for 5 minutes).
LINUX_HOOKS = (
    'set -e; cd "$1"/usr/lib/modules/*/kernel; kver=$(basename "$(dirname "$PWD")"); mkdir ../keep; '
    'for k in %s; do for p in $k; do [ -e "$p" ] && cp -a --parents "$p" ../keep/; done; done; cd ..; rm -rf kernel; mv keep kernel; '
    'chroot "$1" depmod "$kver"' % ' '.join(LINUX_KEEP_MODULES),
    'set -e; : > "$1"/etc/machine-id; rm -f "$1"/var/lib/dbus/machine-id; echo l3m-installed > "$1"/etc/hostname; '
    'printf \'GRUB_DEFAULT=0\\nGRUB_TIMEOUT=1\\nGRUB_DISTRIBUTOR=Debian\\nGRUB_CMDLINE_LINUX_DEFAULT=""\\n'
    'GRUB_CMDLINE_LINUX="console=ttyS0,115200n8"\\nGRUB_TERMINAL="serial console"\\n'
    'GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"\\nGRUB_DISABLE_OS_PROBER=true\\n\' > "$1"/etc/default/grub; '
    'mkdir -p "$1"/etc/cloud/cloud.cfg.d; printf "datasource_list: [ NoCloud, None ]\\n" > "$1"/etc/cloud/cloud.cfg.d/90-l3metal-lab.cfg; '
    'mkdir -p "$1"/etc/systemd/network; printf "[Match]\\nName=en* eth*\\n\\n[Network]\\nDHCP=yes\\n" > "$1"/etc/systemd/network/50-dhcp.network; '
    'chroot "$1" systemctl enable systemd-networkd.service; chroot "$1" update-initramfs -u -k all',
    'rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin "$1"/var/log/*.log "$1"/var/log/apt/*',
)


def linux_user_data(extra: str = '') -> bytes:
    """cloud-init user-data that writes ``CLOUD_INIT_MARKER`` and the instance id (the job id) to the serial console."""
    return ('#cloud-config\nhostname: node01\nruncmd:\n  - [sh, -c, "echo %s job=$(cat /var/lib/cloud/data/instance-id) %s> /dev/ttyS0"]\n'
            % (CLOUD_INIT_MARKER, extra + ' ' if extra else '')).encode()


# The lab recipe's layout: BIOS boot partition (GRUB core.img), ESP, config drive, root; the disk check reads it back.
LINUX_LAYOUT: list[dict[str, t.Any]] = [
    {'size': '1M', 'type_guid': 'ef02'},
    {'size': '128M', 'type_guid': 'ef00', 'format': 'vfat', 'label': 'ESP'},
    {'size': '16M', 'type_guid': '8300', 'format': 'vfat', 'label': 'cidata'},
    {'size': '100%', 'type_guid': '8300', 'format': 'ext4', 'label': 'root'},
]


def _mmdebstrap(packages: t.Sequence[str], hooks: t.Sequence[str], output: Path, deb_cache: Path, variant: str = 'apt') -> list[str]:
    from ansible_collections.l3metal.provision.plugins.module_utils._maintenance_iso import debian
    argv = debian.common_options(packages, variant) + debian.cache_hooks(str(deb_cache)) + ['--skip=output/dev']
    return argv + ['--customize-hook=' + hook for hook in hooks] + [SUITE, str(output), host_mirror()]


def _run(argv: t.Sequence[str], log: Path, what: str, timeout: float = 1800) -> None:
    with open(log, 'w', encoding='utf-8') as handle:
        proc = subprocess.run(list(argv), stdout=handle, stderr=subprocess.STDOUT, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise LabImageError('%s failed (exit %d); last lines of %s:\n%s' % (what, proc.returncode, log, '\n'.join(log.read_text().splitlines()[-40:])))


def linux_rootfs(cache: Path | None = None) -> Path:
    """The lab's Debian OS image as ``rootfs.tar.gz``, built with mmdebstrap once per set of packages and hooks (~2 min)."""
    root = (cache or cache_root()) / 'node-images'
    key = _key('linux', SUITE, host_mirror(), LINUX_PACKAGES, LINUX_HOOKS, 'v1')
    directory = root / ('linux-%s' % key)
    image = directory / 'rootfs.tar.gz'
    if image.is_file():
        return image
    shutil.rmtree(directory, ignore_errors=True)
    work = root / ('linux-%s.tmp' % key)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    debs = root / 'debs'
    debs.mkdir(parents=True, exist_ok=True)
    hooks = LINUX_HOOKS[:-1] + ('echo "l3metal lab image %s" > "$1"%s' % (key, LINUX_RELEASE_FILE), LINUX_HOOKS[-1])
    _run(_mmdebstrap(LINUX_PACKAGES, hooks, work / 'rootfs.tar', debs), work / 'mmdebstrap.log', 'mmdebstrap of the lab Linux image')
    _run(['gzip', '-6', '-n', str(work / 'rootfs.tar')], work / 'gzip.log', 'gzip of the lab Linux image')
    work.rename(directory)
    for old in root.glob('linux-*'):
        if old != directory and not old.name.endswith('.tmp'):
            shutil.rmtree(old, ignore_errors=True)
    return image


def push_linux_image(registry: Registry, repository: str = 'os-images/debian-lab', tag: str = '1', cache: Path | None = None) -> str:
    """Push the lab Linux image (one ``.tar.gz`` layer, the collection's push code); returns the reference the guest uses."""
    return guest_reference(push_image(registry, linux_rootfs(cache), repository, tag))


def push_image(registry: Registry, path: Path, repository: str, tag: str) -> str:
    """Push a file as a one-layer artifact (what ``oci_artifact state=present`` does); returns the host's reference."""
    reference = '%s/%s:%s' % (registry.host, repository, tag)
    _oci_push.push_artifact(reference, [_oci_push.PushFile(str(path))], **registry.client_options())
    return reference


# -- the Windows image (a real WIM, not real Windows) ------------------------------------------------------------------------
UNATTEND = b'<?xml version="1.0"?>\n<unattend xmlns="urn:schemas-microsoft-com:unattend"><!-- l3metal lab --></unattend>\n'
WINDOWS_LAYOUT: list[dict[str, t.Any]] = [
    {'size': '260M', 'type_guid': 'ef00', 'format': 'vfat', 'label': 'SYSTEM'},
    {'size': '16M', 'type_guid': '0c01'},
    {'size': '100%', 'type_guid': '0700', 'format': 'ntfs', 'label': 'Windows'},
]
WIM_INDEX = 2
WIM_BCD = b'regf lab BCD store'  # the BCD store of both images (not a real one)


def wim_bootmgfw(index: int) -> bytes:
    """The ``bootmgfw.efi`` that image ``index`` of ``write_windows_wim`` holds (each image its own, so a test can tell them apart)."""
    return b'MZ lab bootmgfw for image %d' % index


def write_windows_wim(wim: Path, work: Path) -> Path:
    """Write a two-image WIM at ``wim`` with wimlib (wimcapture + wimappend), its trees built under ``work``.

    Index 1 is a decoy, index 2 the image a recipe asks for (``WIM_INDEX``); each holds a Windows-like tree: boot files
    (``Windows/Boot/EFI/bootmgfw.efi`` = ``wim_bootmgfw(index)``, ``BCD``, a ``.mui``), ``Windows/System32/marker.txt``
    ("image one"/"image two") and a non-ASCII file name.  Not real Windows: labelled so in the module docstring.
    """
    for index, marker in ((1, b'image one'), (2, b'image two')):
        tree = work / ('tree%d' % index)
        shutil.rmtree(tree, ignore_errors=True)
        efi = tree / 'Windows' / 'Boot' / 'EFI'
        (efi / 'en-US').mkdir(parents=True)
        (efi / 'bootmgfw.efi').write_bytes(wim_bootmgfw(index))
        (efi / 'BCD').write_bytes(WIM_BCD)
        (efi / 'en-US' / 'bootmgfw.efi.mui').write_bytes(b'mui')
        (tree / 'Windows' / 'System32').mkdir()
        (tree / 'Windows' / 'System32' / 'marker.txt').write_bytes(marker)
        (tree / 'Program Files').mkdir()
        (tree / 'Program Files' / 'Gr\u00fc\u00dfe.txt').write_text('unicode name')
        _run(['wimcapture' if index == 1 else 'wimappend', str(tree), str(wim), 'Image %d' % index],
             work / ('wim%d.log' % index), 'wimlib')
        shutil.rmtree(tree)
    return wim


def windows_wim(cache: Path | None = None) -> Path:
    """The lab's ``write_windows_wim``, built once per checkout in the cache."""
    root = (cache or cache_root()) / 'node-images'
    key = _key('wim', 'v1')
    wim = root / ('windows-%s' % key) / 'install.wim'
    if wim.is_file():
        return wim
    work = root / ('windows-%s.tmp' % key)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    write_windows_wim(work / 'install.wim', work)
    work.rename(wim.parent)
    return wim


def push_windows_wim(registry: Registry, repository: str = 'os-images/windows-wim', tag: str = '1', cache: Path | None = None) -> str:
    return guest_reference(push_image(registry, windows_wim(cache), repository, tag))


# -- firmware ----------------------------------------------------------------------------------------------------------------
def firmware_image(directory: Path, name: str = 'lab-bios.bin') -> tuple[Path, str]:
    """The lab firmware file (not real firmware) in ``directory``; returns (path, sha256)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_bytes(FIRMWARE)
    return path, hashlib.sha256(FIRMWARE).hexdigest()
