#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: esxi_installer_iso
short_description: Remaster the stock VMware ESXi installer ISO so that it starts its kickstart without a keystroke
version_added: 0.1.0
description:
  - Takes the installer ISO as VMware ships it (a file, or an V(http://) or V(https://) URL, downloaded as a stream) and
    writes a copy into O(dest_dir) whose boot loaders start the scripted install by themselves.
  - Both boot configurations get the boot option C(ks=)O(kickstart) in their C(kernelopt=) line - C(/BOOT.CFG), which
    the BIOS boot loader (C(mboot.c32)) reads, and C(/EFI/BOOT/BOOT.CFG), which the UEFI one (C(BOOTX64.EFI)) reads.
    The options already there are kept (C(runweasel cdromBoot)); an existing C(ks=) is replaced, not repeated.
    O(kernel_options) adds or replaces more options the same way.
  - The copy stays bootable in BIOS and UEFI. By default (O(method=auto)) it is the input byte for byte except the two
    files' contents and the sizes in their directory records, so the El Torito catalog, the boot images, the EFI image
    and every other file keep their bytes and places (O(method=in_place)). When that is not possible (a new C(boot.cfg)
    larger than the blocks of the old one, a UDF tree) xorriso writes a new image with C(-boot_image any replay), which
    keeps the El Torito entries and the EFI image (O(method=xorriso)).
  - The copy is read back before it is put in place, with pycdlib (every ISO 9660, Joliet and Rock Ridge tree must show the
    new C(boot.cfg)) and with the module's own reader (same El Torito entries as the input).
  - The copy is named after the input's SHA-256 and the options (RV(file_name)); it is written to a temporary file in
    O(dest_dir) and renamed, so a BMC downloading it never sees a half-written image. When that file exists the module
    changes nothing (RV(cached)). With O(sha256) given nothing is read or downloaded then; without it, a file O(src) is
    read once to compute its checksum and a URL is downloaded again each run.
  - Several hosts remastering into one O(dest_dir) at once take turns (a lock on the directory); the later ones find the
    copy made.
author:
  - l3metal.provision contributors (@l3metal)
extends_documentation_fragment:
  - l3metal.provision.attributes
  - ansible.builtin.files
attributes:
  check_mode:
    support: full
    details:
      - Reports the path the copy would get and, for a file O(src), the new C(kernelopt) lines (O(src) is read, nothing is written).
      - A URL is not downloaded in check mode; RV(path) is then only known with O(sha256).
  diff_mode:
    support: full
    details: Shows both C(boot.cfg) before and after.
options:
  src:
    description:
      - The stock installer ISO - a path on the host that runs the module, or an V(http://) or V(https://) URL.
      - A URL is downloaded as a stream into O(dest_dir) (no copy in memory), its SHA-256 computed on the way.
    type: str
    required: true
  sha256:
    description:
      - The SHA-256 of O(src) as VMware publishes it (64 hexadecimal digits).
      - It is checked when O(src) is read or downloaded; a mismatch fails the task and nothing is written.
      - With it, a run whose copy already exists reads and downloads nothing.
    type: str
  dest_dir:
    description:
      - The directory the copy is written to, for example the webhook receiver's media directory, from which BMCs download
        it. It must exist; a URL download needs room for the ISO twice while it is remastered.
    type: path
    required: true
  name:
    description:
      - Start of the copy's file name; the rest is C(-ks-<16 hex digits of the cache key>.iso).
      - Default - the file name of O(src) without C(.iso).
    type: str
  kickstart:
    description:
      - Where the installer reads the kickstart, the value of the C(ks=) boot option.
      - V(cdrom:/KS.CFG) for a kickstart ISO on a (second) virtual CD (M(l3metal.provision.task_iso) writes C(KS.CFG));
        the installer looks on every CD drive. V(usb:/KS.CFG) for a FAT image in the removable-disk (USB) slot.
      - An V(http://) or V(https://) URL is also accepted, as ESXi reads one.
    type: str
    default: cdrom:/KS.CFG
  kernel_options:
    description:
      - More boot options to set in both C(kernelopt) lines, as V(name=value) or V(name), for example V(allowLegacyCPU=true).
        An option already there with the same name is replaced.
    type: list
    elements: str
    default: []
  method:
    description:
      - V(auto) edits in place when it can and otherwise uses xorriso.
      - V(in_place) fails instead of falling back; V(xorriso) always writes a new image with xorriso.
      - Part of the cache key, so V(xorriso) and V(auto) give two files.
    type: str
    choices: [auto, in_place, xorriso]
    default: auto
  validate_certs:
    description:
      - Verify the TLS certificate of an V(https://) O(src).
    type: bool
    default: true
  ca_path:
    description:
      - PEM file with the CA certificate(s) that signed the certificate of an V(https://) O(src).
    type: path
  timeout:
    description:
      - Seconds to wait for the server of a URL O(src) to connect and to send each part of the download.
    type: int
    default: 60
requirements:
  - pycdlib >= 1.11
  - xorriso (only when the in-place edit is not possible, or for O(method=xorriso))
notes:
  - Old copies are not removed; a new ESXi release or other options give a new file next to the old ones.
  - The BIOS and UEFI paths are those of ESXi 6.5 and later; an ISO without either C(boot.cfg) is refused.
seealso:
  - module: l3metal.provision.task_iso
'''

EXAMPLES = r'''
- name: Installer that reads its kickstart from the second virtual CD
  l3metal.provision.esxi_installer_iso:
    src: /srv/iso/VMware-VMvisor-Installer-8.0U3-24022510.x86_64.iso
    sha256: 09c1a3a0e1b1f3a8b3b0f0f2f7e5c1d4b8a7e6f5d4c3b2a1908f7e6d5c4b3a29
    dest_dir: /srv/l3metal/media/esxi
  register: installer

- name: The same from a web server, for a BMC with a single CD (kickstart on the USB slot)
  l3metal.provision.esxi_installer_iso:
    src: https://mirror.example.com/vmware/VMware-VMvisor-Installer-8.0U3-24022510.x86_64.iso
    sha256: 09c1a3a0e1b1f3a8b3b0f0f2f7e5c1d4b8a7e6f5d4c3b2a1908f7e6d5c4b3a29
    ca_path: /etc/pki/mirror-ca.pem
    dest_dir: /srv/l3metal/media/esxi
    kickstart: usb:/KS.CFG
    kernel_options: [allowLegacyCPU=true]

- name: Its URL for the BMC
  ansible.builtin.debug:
    msg: http://10.1.1.10:8080/media/esxi/{{ installer.file_name }}
'''

RETURN = r'''
path:
  description: Path of the copy; V(null) in check mode for a URL without O(sha256).
  returned: always
  type: str
  sample: /srv/l3metal/media/esxi/VMware-VMvisor-Installer-8.0U3-24022510.x86_64-ks-5d1c27a0b7f3e912.iso
file_name:
  description: File name of the copy (in O(dest_dir)).
  returned: always
  type: str
  sample: VMware-VMvisor-Installer-8.0U3-24022510.x86_64-ks-5d1c27a0b7f3e912.iso
src_sha256:
  description: SHA-256 of the input ISO (O(sha256) when the input was not read).
  returned: always
  type: str
key:
  description: The cache key, SHA-256 of the input's checksum, the boot options and O(method).
  returned: always
  type: str
cached:
  description: The copy already existed; nothing was written.
  returned: always
  type: bool
downloaded:
  description: O(src) was downloaded in this run.
  returned: always
  type: bool
method:
  description: How the copy was written in this run (V(in_place) or V(xorriso)); V(null) when nothing was written.
  returned: always
  type: str
  sample: in_place
in_place_refused:
  description: Why O(method=auto) could not edit in place and used xorriso; V(null) otherwise.
  returned: always
  type: str
size:
  description: Size of the copy in bytes; V(null) when it is not known (check mode).
  returned: always
  type: int
kernelopt:
  description: The C(kernelopt) value of each C(boot.cfg) of the copy (as it is, or would be written).
  returned: always
  type: dict
  sample: {/BOOT.CFG: runweasel cdromBoot ks=cdrom:/KS.CFG, /EFI/BOOT/BOOT.CFG: runweasel cdromBoot ks=cdrom:/KS.CFG}
boot_entries:
  description: The El Torito boot entries of the copy (the input's, same platforms and images).
  returned: when the copy was read or written
  type: list
  elements: dict
  sample: [{platform: bios, bootable: true, sectors: 4}, {platform: uefi, bootable: true, sectors: 2880}]
'''

import fcntl
import os
import re
import tempfile
import traceback
import urllib.parse

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.urls import open_url

from ansible_collections.l3metal.provision.plugins.module_utils._esxi_iso import (
    BOOT_CFG_PATHS,
    HAS_PYCDLIB,
    METHODS,
    PYCDLIB_IMPORT_ERROR,
    EsxiIsoError,
    cache_key,
    check_kernel_options,
    copy_hashing,
    default_stem,
    file_sha256,
    find_file,
    kernelopt,
    output_name,
    plan,
    read_file,
    read_layout,
    remaster,
    temp_path,
)

PLATFORMS = {0: 'bios', 0xef: 'uefi'}


def safe_url(url: str) -> str:
    """``url`` without user and password, for messages."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ''
    netloc = host + (':%d' % parts.port if parts.port else '')
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def download(url: str, dest: str, validate_certs: bool, ca_path: str | None, timeout: int) -> tuple[str, int]:
    """Stream ``url`` into ``dest``; return its (SHA-256, size)."""
    shown = safe_url(url)
    try:
        response = open_url(url, method='GET', validate_certs=validate_certs, ca_path=ca_path, timeout=timeout,
                            http_agent='l3metal.provision esxi_installer_iso')
    except Exception as exc:  # pylint: disable=broad-exception-caught  # HTTPError, URLError, SSL and connection errors
        code = getattr(exc, 'code', None)
        if isinstance(code, int):
            raise EsxiIsoError('src: HTTP %s from %s' % (code, shown)) from None
        raise EsxiIsoError('src: cannot download %s: %s' % (shown, getattr(exc, 'reason', None) or exc)) from None
    try:
        expected = response.headers.get('Content-Length')
        with open(dest, 'wb') as handle:
            sha256, size = copy_hashing(response, handle)
    except OSError as exc:
        raise EsxiIsoError('src: the download of %s broke off: %s' % (shown, getattr(exc, 'strerror', None) or exc)) from None
    finally:
        response.close()
    if expected and expected.isdigit() and int(expected) != size:
        raise EsxiIsoError('src: the download of %s ended after %d of %s bytes' % (shown, size, expected))
    return sha256, size


class DirectoryLock:
    """An exclusive ``flock`` on the directory itself: no lock file is left in a served directory."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDONLY)

    def __enter__(self) -> DirectoryLock:
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def describe_entries(entries: list) -> list[dict]:
    return [dict(platform=PLATFORMS.get(entry.platform, '0x%02x' % entry.platform), bootable=entry.bootable, sectors=entry.sectors)
            for entry in entries]


def read_existing(path: str) -> tuple[dict[str, str | None], list[dict]]:
    with open(path, 'rb') as fp:
        layout = read_layout(fp)
        return ({cfg: kernelopt(read_file(fp, find_file(layout, cfg))) for cfg in BOOT_CFG_PATHS}, describe_entries(layout.boot_entries))


def remove_quietly(path: str | None) -> None:
    if path:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            src=dict(type='str', required=True),
            sha256=dict(type='str'),
            dest_dir=dict(type='path', required=True),
            name=dict(type='str'),
            kickstart=dict(type='str', default='cdrom:/KS.CFG'),
            kernel_options=dict(type='list', elements='str', default=[]),
            method=dict(type='str', choices=list(METHODS), default='auto'),
            validate_certs=dict(type='bool', default=True),
            ca_path=dict(type='path'),
            timeout=dict(type='int', default=60),
        ),
        add_file_common_args=True,
        supports_check_mode=True,
    )
    params = module.params
    if not HAS_PYCDLIB:
        module.fail_json(msg=missing_required_lib('pycdlib'), exception=str(PYCDLIB_IMPORT_ERROR))
    src = params['src']
    is_url = bool(re.match(r'^https?://', src, re.IGNORECASE))
    expected_sha = (params['sha256'] or '').strip().lower() or None
    if expected_sha is not None and not re.match(r'^[0-9a-f]{64}$', expected_sha):
        module.fail_json(msg='sha256: %r is not a SHA-256 (64 hexadecimal digits)' % params['sha256'])
    if params['timeout'] < 1:
        module.fail_json(msg='timeout: must be at least 1 second, got %s' % params['timeout'])
    dest_dir = params['dest_dir']
    if not os.path.isdir(dest_dir):
        module.fail_json(msg='dest_dir: %s is not a directory (create it first)' % dest_dir)
    if not is_url:
        src = os.path.abspath(src)
        if not os.path.isfile(src):
            module.fail_json(msg='src: %s is not a file (give a path on the host that runs the module, or an http(s):// URL)' % src)
    stem = params['name'] or default_stem(src)

    result = dict(changed=False, path=None, file_name=None, src_sha256=expected_sha, key=None, cached=False, downloaded=False,
                  method=None, in_place_refused=None, size=None, kernelopt={})

    def name_for(sha256: str) -> str:
        result['src_sha256'] = sha256
        result['key'] = cache_key(sha256, options, params['method'])
        result['file_name'] = output_name(stem, result['key'])
        result['path'] = os.path.join(dest_dir, result['file_name'])
        return result['path']

    def exit_cached(path: str) -> None:
        result['cached'] = True
        result['size'] = os.path.getsize(path)
        result['kernelopt'], result['boot_entries'] = read_existing(path)
        file_args = module.load_file_common_arguments(params, path=path)
        result['changed'] = module.set_fs_attributes_if_different(file_args, False)
        module.exit_json(**result)

    work_copy = tmp = None
    try:
        options = check_kernel_options(params['kickstart'], params['kernel_options'])
        # The cheap way first: a known checksum names the copy without a download.
        src_sha = expected_sha or (None if is_url else file_sha256(src))
        if src_sha and os.path.exists(name_for(src_sha)):
            exit_cached(result['path'])
        if module.check_mode:
            result['changed'] = True
            if not is_url:
                the_plan = plan(src, options)
                result['kernelopt'] = {cfg: kernelopt(data) for cfg, data in the_plan.after.items()}
                result['boot_entries'] = describe_entries(the_plan.layout.boot_entries)
                if module._diff:
                    result['diff'] = [dict(before=the_plan.before[cfg].decode('latin-1'), after=the_plan.after[cfg].decode('latin-1'),
                                           before_header=cfg, after_header=cfg) for cfg in BOOT_CFG_PATHS]
            module.exit_json(**result)

        with DirectoryLock(dest_dir), tempfile.TemporaryDirectory(prefix='l3metal-esxi-') as work_dir:
            if src_sha and os.path.exists(result['path']):
                exit_cached(result['path'])  # another host made it while this one waited for the lock
            source = src
            if is_url:
                work_copy = temp_path(dest_dir, 'esxi-download')
                got_sha, _size = download(src, work_copy, params['validate_certs'], params['ca_path'], params['timeout'])
                result['downloaded'] = True
                if expected_sha and got_sha != expected_sha:
                    raise EsxiIsoError('sha256: %s has SHA-256 %s, not %s; nothing written' % (safe_url(src), got_sha, expected_sha))
                if os.path.exists(name_for(got_sha)):
                    remove_quietly(work_copy)
                    work_copy = None
                    exit_cached(result['path'])
                source = work_copy
            elif expected_sha:
                got_sha = file_sha256(src)
                if got_sha != expected_sha:
                    raise EsxiIsoError('sha256: %s has SHA-256 %s, not %s; nothing written' % (src, got_sha, expected_sha))
            the_plan = plan(source, options)
            tmp = temp_path(dest_dir, result['file_name'])
            written = remaster(source, work_copy, tmp, the_plan, params['method'], work_dir)
            work_copy = None if written.method == 'in_place' else work_copy
            os.chmod(tmp, 0o644)
            os.replace(tmp, result['path'])
            tmp = None
    except EsxiIsoError as exc:
        remove_quietly(tmp)
        remove_quietly(work_copy)
        module.fail_json(msg=str(exc), **result)
    except Exception as exc:  # pylint: disable=broad-exception-caught
        remove_quietly(tmp)
        remove_quietly(work_copy)
        module.fail_json(msg='unexpected error while remastering %s: %s' % (safe_url(src) if is_url else src, exc), exception=traceback.format_exc())
    remove_quietly(work_copy)

    result.update(changed=True, method=written.method, in_place_refused=written.in_place_refused, size=os.path.getsize(result['path']),
                  kernelopt={cfg: kernelopt(data) for cfg, data in the_plan.after.items()}, boot_entries=describe_entries(written.layout.boot_entries))
    if module._diff:
        result['diff'] = [dict(before=the_plan.before[cfg].decode('latin-1'), after=the_plan.after[cfg].decode('latin-1'),
                               before_header=cfg, after_header=cfg) for cfg in BOOT_CFG_PATHS]
    file_args = module.load_file_common_arguments(params, path=result['path'])
    module.set_fs_attributes_if_different(file_args, True)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
