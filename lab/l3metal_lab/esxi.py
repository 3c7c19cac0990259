# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""An ESXi-installer-shaped ISO built here, booted under QEMU, and what the simulated ESXi host needs.

The real installer ISO cannot be had here (VMware's download needs an account), so the tests build one with the
same shape: ``/BOOT.CFG`` and ``/EFI/BOOT/BOOT.CFG`` modelled on ESXi 8.0 U3's (about 1.8 KiB each), an El Torito
BIOS entry (``/ISOLINUX.BIN``, no emulation, 4 sectors, boot info table) and a UEFI entry (``/EFIBOOT.IMG``, a FAT
image holding ``/EFI/BOOT/BOOTX64.EFI``), with the ``xorriso -as mkisofs`` options of VMware's own instructions for a
custom installer ISO.

**Stand-in for ESXi's boot loaders (a simulation, labelled so):** the boot images are GRUB, not VMware's
``isolinux.bin`` + ``mboot.c32`` and ``mboot64.efi``.  Each GRUB image carries an embedded configuration that does
what mboot does first - find the ISO, read its ``boot.cfg`` (BIOS: ``/BOOT.CFG``; UEFI: ``/EFI/BOOT/BOOT.CFG``)
through the ISO 9660 file system - and prints that file on the serial console between two marker lines, then
halts.  That shows the firmware boots the remastered ISO and the boot loader reads the *changed* file; it does not
show that ESXi's kernel honours ``ks=`` (nothing here can).
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys
import time
import typing as t
from pathlib import Path

import pycdlib

OVMF_CODE = Path('/usr/share/OVMF/OVMF_CODE_4M.fd')
VOLUME_ID = 'ESXI-8.0U3-STANDIN'
BEGIN, END = 'BOOTCFG-BEGIN', 'BOOTCFG-END'
STANDIN_MARKER = 'L3METAL-STANDIN-MBOOT'

# Modelled on ESXi 8.0 U3's boot.cfg (1.8 KiB, 106 modules); the UEFI copy differs in its prefix line, as there.
MODULES = ' --- '.join([
    '/jumpstrt.gz', '/useropts.gz', '/features.gz', '/k.b00', '/uc_intel.b00', '/uc_amd.b00', '/uc_hygon.b00', '/procfs.b00', '/vmx.v00', '/vim.v00',
    '/tpm.v00', '/sb.v00', '/s.v00', '/atlantic.v00', '/bcm_mpi3.v00', '/bnxtnet.v00', '/bnxtroce.v00', '/brcmfcoe.v00', '/cndi_igc.v00',
    '/dwi2c.v00', '/elxiscsi.v00', '/elxnet.v00', '/i40en.v00', '/iavmd.v00', '/icen.v00', '/igbn.v00', '/intelgpi.v00', '/ionic_cl.v00',
    '/ionic_en.v00', '/irdman.v00', '/iser.v00', '/ixgben.v00', '/lpfc.v00', '/lpnic.v00', '/lsi_mr3.v00', '/lsi_msgp.v00', '/lsi_msgp.v01',
    '/lsi_msgp.v02', '/mtip32xx.v00', '/ne1000.v00', '/nenic.v00', '/nfnic.v00', '/nhpsa.v00', '/nipmi.v00', '/nmlx5_cc.v00', '/nmlx5_co.v00',
    '/nmlx5_rd.v00', '/ntg3.v00', '/nvme_pci.v00', '/nvmerdma.v00', '/nvmetcp.v00', '/nvmxnet3.v00', '/nvmxnet3.v01', '/pvscsi.v00', '/qcnic.v00',
    '/qedentv.v00', '/qedrntv.v00', '/qfle3.v00', '/qfle3f.v00', '/qfle3i.v00', '/qflge.v00', '/rdmahl.v00', '/rste.v00', '/sfvmk.v00',
    '/smartpqi.v00', '/vmkata.v00', '/vmksdhci.v00', '/vmkusb.v00', '/vmw_ahci.v00', '/bmcal.v00', '/clusters.v00', '/crx.v00', '/drivervm.v00',
    '/elx_esx_.v00', '/btldr.v00', '/esx_dvfi.v00', '/esx_ui.v00', '/esxupdt.v00', '/tpmesxup.v00', '/weaselin.v00', '/esxio_co.v00',
    '/infravis.v00', '/loadesx.v00', '/lsuv2_hp.v00', '/lsuv2_in.v00', '/lsuv2_ls.v00', '/lsuv2_nv.v00', '/lsuv2_oe.v00', '/lsuv2_oe.v01',
    '/lsuv2_sm.v00', '/native_m.v00', '/qlnative.v00', '/trx.v00', '/vdfs.v00', '/vmware_e.v00', '/vsan.v00', '/vsanheal.v00', '/vsanmgmt.v00',
    '/tools.t00', '/xorg.v00', '/gc.v00', '/imgdb.tgz', '/basemisc.tgz', '/resvibs.tgz', '/esxiodpt.tgz', '/imgpayld.tgz'
])
BOOT_CFG_BIOS = ('bootstate=0\ntitle=Loading ESXi installer\ntimeout=5\nprefix=\nkernel=/b.b00\nkernelopt=runweasel cdromBoot\n'
                 'modules=%s\nbuild=8.0.3-0.0.24022510\nupdated=0\n' % MODULES).encode('ascii')
BOOT_CFG_UEFI = BOOT_CFG_BIOS.replace(b'\nprefix=\n', b'\nprefix=/\n')

_GRUB_MODULES_BIOS = ['biosdisk', 'iso9660', 'search', 'search_fs_file', 'serial', 'terminal', 'terminfo', 'echo', 'cat', 'halt']
_GRUB_MODULES_UEFI = ['iso9660', 'fat', 'part_gpt', 'part_msdos', 'search', 'search_fs_file', 'serial', 'terminal', 'terminfo', 'echo', 'cat',
                      'halt']


class InstallerIso(t.NamedTuple):
    path: Path
    files: dict[str, bytes]   # every file by its path on the ISO (upper case, as the real one has them)


def _grub_config(firmware: str, boot_cfg: str) -> str:
    return '\n'.join([
        'serial --unit=0 --speed=115200',
        'terminal_input serial',
        'terminal_output serial',
        'terminfo -g 4096x25 serial dumb',   # no line wrapping (at 80 columns by default): boot.cfg comes out as it is
        'search --no-floppy --set=root --file %s' % boot_cfg,
        'echo "%s firmware=%s (GRUB stand-in for ESXi mboot) root=$root"' % (STANDIN_MARKER, firmware),
        'echo "%s %s"' % (BEGIN, boot_cfg),
        'cat %s' % boot_cfg,
        'echo "%s"' % END,
        'halt',
        '',
    ])


def _run(argv: list[str], **kwargs: t.Any) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)
    if proc.returncode != 0:
        raise RuntimeError('%s failed (exit %d): %s' % (argv[0], proc.returncode, (proc.stderr or proc.stdout).strip()))


def build_installer_iso(work_dir: Path, dest: Path, boot_cfg_bios: bytes = BOOT_CFG_BIOS, boot_cfg_uefi: bytes = BOOT_CFG_UEFI,
                        volume_id: str = VOLUME_ID) -> InstallerIso:
    """The stand-in installer ISO (about 2.5 MB; 0.2 s)."""
    tree = work_dir / 'tree'
    if tree.exists():
        shutil.rmtree(tree)
    (tree / 'EFI' / 'BOOT').mkdir(parents=True)
    configs = work_dir / 'grub'
    configs.mkdir(exist_ok=True)
    (configs / 'bios.cfg').write_text(_grub_config('bios', '/BOOT.CFG'))
    (configs / 'uefi.cfg').write_text(_grub_config('uefi', '/EFI/BOOT/BOOT.CFG'))
    _run(['grub-mkimage', '-O', 'i386-pc-eltorito', '-p', '/grub', '-c', str(configs / 'bios.cfg'), '-o', str(tree / 'ISOLINUX.BIN')]
         + _GRUB_MODULES_BIOS)
    _run(['grub-mkimage', '-O', 'x86_64-efi', '-p', '/grub', '-c', str(configs / 'uefi.cfg'), '-o', str(tree / 'EFI' / 'BOOT' / 'BOOTX64.EFI')]
         + _GRUB_MODULES_UEFI)
    efi_image = tree / 'EFIBOOT.IMG'
    with open(efi_image, 'wb') as handle:
        handle.truncate(1440 * 1024)
    env = {'MTOOLS_SKIP_CHECK': '1', 'MTOOLSRC': '/dev/null', 'SOURCE_DATE_EPOCH': '1577836800', 'TZ': 'UTC', 'PATH': '/usr/bin:/bin'}
    _run(['mformat', '-i', str(efi_image), '-N', '12345678', '::'], env=env)
    _run(['mmd', '-i', str(efi_image), '::/EFI', '::/EFI/BOOT'], env=env)
    _run(['mcopy', '-i', str(efi_image), str(tree / 'EFI' / 'BOOT' / 'BOOTX64.EFI'), '::/EFI/BOOT/BOOTX64.EFI'], env=env)
    (tree / 'BOOT.CFG').write_bytes(boot_cfg_bios)
    (tree / 'EFI' / 'BOOT' / 'BOOT.CFG').write_bytes(boot_cfg_uefi)
    (tree / 'ISOLINUX.CFG').write_text('DEFAULT menu.c32\nMENU TITLE ESXi-8.0U3 Boot Menu\nTIMEOUT 80\nLABEL install\n  KERNEL mboot.c32\n'
                                       '  APPEND -c boot.cfg\n')
    (tree / 'B.B00').write_bytes(b'stand-in for the vmkernel\n' * 40)
    (tree / 'JUMPSTRT.GZ').write_bytes(bytes(range(256)) * 8)
    (tree / 'S.V00').write_bytes(bytes((i * 7919) % 251 for i in range(300_000)))
    (tree / 'UPGRADE').mkdir()
    (tree / 'UPGRADE' / 'PRECHECK.PY').write_text('# stand-in\n')
    _run(['xorriso', '-as', 'mkisofs', '-quiet', '-relaxed-filenames', '-J', '-R', '-V', volume_id, '-o', str(dest),
          '-b', 'ISOLINUX.BIN', '-c', 'BOOT.CAT', '-no-emul-boot', '-boot-load-size', '4', '-boot-info-table',
          '-eltorito-alt-boot', '-e', 'EFIBOOT.IMG', '-no-emul-boot', str(tree)], env={'SOURCE_DATE_EPOCH': '1577836800', 'PATH': '/usr/bin:/bin'})
    files = {'/' + str(path.relative_to(tree)): path.read_bytes() for path in sorted(tree.rglob('*')) if path.is_file()}
    return InstallerIso(dest, files)


# ---------------------------------------------------------------------------------------------------
# booting it


class Boot(t.NamedTuple):
    firmware: str
    boot_cfg: str | None    # the file the stand-in boot loader printed, or None when the markers never came
    seconds: float          # from starting QEMU to the end marker on the serial console
    console: str


def boot_standin(iso: Path, firmware: str, work_dir: Path, timeout: float = 90.0) -> Boot:
    """Boot ``iso`` under QEMU (TCG: KVM is broken on these machines) with SeaBIOS or OVMF, until the stand-in printed boot.cfg."""
    work_dir.mkdir(parents=True, exist_ok=True)
    log = work_dir / ('serial-%s.log' % firmware)
    log.write_bytes(b'')
    argv = ['qemu-system-x86_64', '-accel', 'tcg', '-m', '256', '-display', 'none', '-monitor', 'none', '-no-reboot',
            '-serial', 'file:%s' % log, '-cdrom', str(iso)]
    argv += ['-boot', 'd'] if firmware == 'bios' else ['-drive', 'if=pflash,format=raw,readonly=on,file=%s' % OVMF_CODE]
    started = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seconds = timeout
    try:
        deadline = started + timeout
        while time.monotonic() < deadline:
            if END.encode() in log.read_bytes():
                seconds = time.monotonic() - started
                break
            if proc.poll() is not None and END.encode() not in log.read_bytes():
                break
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        assert proc.stderr is not None
        proc.stderr.close()
    console = log.read_bytes().decode('utf-8', 'replace').replace('\r', '')
    match = re.search(r'%s [^\n]*\n(.*)\n%s' % (BEGIN, END), console, re.S)
    return Boot(firmware, match.group(1) if match else None, seconds, console)


# ---------------------------------------------------------------------------------------------------
# what the simulated ESXi installer and host do


def read_iso_file(image: Path, iso_path: str) -> bytes | None:
    """A file by its plain ISO 9660 path (``/BOOT.CFG;1``), read with pycdlib; None if absent or not an ISO."""
    iso = pycdlib.PyCdlib()
    try:
        iso.open(str(image))
    except pycdlib.pycdlibexception.PyCdlibException:
        return None
    try:
        out = io.BytesIO()
        iso.get_file_from_iso_fp(out, iso_path=iso_path)
        return out.getvalue()
    except pycdlib.pycdlibexception.PyCdlibException:
        return None
    finally:
        iso.close()


def read_fat_file(image: Path, path: str) -> bytes | None:
    """A file of a FAT image (mtools; names without case), None if absent."""
    env = {'MTOOLS_SKIP_CHECK': '1', 'MTOOLSRC': '/dev/null', 'PATH': '/usr/bin:/bin'}
    proc = subprocess.run(['mtype', '-i', str(image), '::' + path], capture_output=True, env=env, check=False)
    return proc.stdout if proc.returncode == 0 else None


def boot_options(installer: Path, uefi: bool) -> dict[str, str | None] | None:
    """The ``kernelopt`` options of the boot.cfg the installer's boot loader reads in this firmware mode, or None."""
    data = read_iso_file(installer, '/EFI/BOOT/BOOT.CFG;1' if uefi else '/BOOT.CFG;1')
    if data is None:
        return None
    for line in data.decode('latin-1').splitlines():
        if line.startswith('kernelopt='):
            options: dict[str, str | None] = {}
            for token in line[len('kernelopt='):].split():
                name, sep, value = token.partition('=')
                options[name] = value if sep else None
            return options
    return {}


def firstboot_sections(ks_cfg: str) -> list[tuple[str, str]]:
    """The ``%firstboot`` sections of a kickstart as (header line, script), in order; a section ends at the next ``%`` line."""
    sections: list[tuple[str, str]] = []
    current: list[str] | None = None
    header = ''
    for line in ks_cfg.splitlines(keepends=True):
        if line.startswith('%'):
            if current is not None:
                sections.append((header, ''.join(current)))
            current = [] if line.split()[0] == '%firstboot' else None
            header = line.rstrip('\r\n')
        elif current is not None:
            current.append(line)
    if current is not None:
        sections.append((header, ''.join(current)))
    return sections


class FirstbootRun(t.NamedTuple):
    header: str
    rc: int
    stderr: str
    seconds: float


def run_firstboot(ks_cfg: str, work_dir: Path, timeout: float = 300.0, env: t.Mapping[str, str] | None = None) -> list[FirstbootRun]:
    """Run the Python ``%firstboot`` scripts of a kickstart as the installed host would, in order.

    Simulation: ESXi runs them with its own Python; here it is this interpreter with ``-I -S`` (no site-packages,
    no PYTHON* variables), so a script that needs anything but the standard library fails as it would there.
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    runs: list[FirstbootRun] = []
    for index, (header, script) in enumerate(firstboot_sections(ks_cfg)):
        if '--interpreter=python' not in header:
            continue
        path = work_dir / ('firstboot-%03d.py' % index)
        path.write_text(script)
        started = time.monotonic()
        proc = subprocess.run([sys.executable, '-I', '-S', str(path)], capture_output=True, text=True, timeout=timeout, check=False,
                              env=dict(env or {'PATH': '/usr/bin:/bin'}), cwd=str(work_dir))
        runs.append(FirstbootRun(header, proc.returncode, proc.stderr, time.monotonic() - started))
    return runs
