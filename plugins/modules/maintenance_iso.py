#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: maintenance_iso
short_description: Build the live maintenance ISO (hybrid BIOS + UEFI) from the collection's maintenance OS sources
version_added: 0.2.0
description:
  - Builds the ISO that servers boot from virtual CD 1: a live system (dracut C(dmsquash-live), copied to RAM with
    C(rd.live.ram=1 rd.live.overlay.overlayfs=1)) running the maintenance OS of C(maintenance_os/) - the dispatcher, the
    systemd targets and the Quadlet steps - with every step's tool image inside it, in a read-only image store, so
    nothing is pulled at boot.
  - The image content is what the Containerfiles install. C(maintenance_os/Containerfile) is built FROM the base,
    C(maintenance_os/site/Containerfile) adds the site settings, C(maintenance_os/live/Containerfile) the live layer.
    The tool images are built from C(maintenance_os/tools/*/Containerfile), the ones the Quadlet files' C(Image=) lines
    name, on a Debian base made with mmdebstrap (Debian package names from C(maintenance_os/debian-install.txt)).
  - O(base=debian) makes the base with mmdebstrap from Debian packages (C(maintenance_os/live/debian-packages.txt)),
    buildable anywhere with a Debian mirror. O(base=bootc) builds FROM a bootc image (O(bootc_image)) and exports the
    root file system with C(bootc container export) (SELinux labels); the initramfs and the ISO are made by the same
    steps. The bootc base is not proven by this collection's tests (no bootc image can be pulled where they run); see
    the collection's C(docs/maintenance_os.md).
  - Every stage is keyed on the digest of its inputs (sources, packages, options; not timestamps, not the host's tool
    versions). The ISO is named C(<name>-<16 hex digits of the inputs digest>.iso) in O(dest), with a C(.sha256) file
    (C(sha256sum -c) format) beside it. When that ISO exists, nothing is built and the task reports no change. An edited
    input rebuilds only the stages that depend on it (for example a dispatcher file: the image layers, the squashfs and
    the ISO; the Debian base, the tool images and the initramfs are reused). The ISO is written to a temporary file and
    renamed, so a reader never sees a half-written ISO.
  - Runs as root (C(become=true)) on the build host, which needs mmdebstrap, podman, skopeo, squashfs-tools, grub-common,
    grub-pc-bin, grub-efi-amd64-bin, xorriso and mtools (Debian package names). A build from nothing takes a few minutes
    and about 3 GB in O(cache_dir); the ISO is about 300 MB.
author:
  - l3metal.provision contributors (@l3metal)
extends_documentation_fragment:
  - l3metal.provision.attributes
  - ansible.builtin.files
attributes:
  check_mode:
    support: full
    details:
      - Computes the stage keys and reports which stages would be built or reused (RV(stages)) and the ISO's path; builds
        and writes nothing, and needs neither root nor the build tools.
  diff_mode:
    support: none
options:
  base:
    description:
      - V(debian) builds the base from Debian packages with mmdebstrap (O(suite), O(mirror)).
      - V(bootc) builds FROM O(bootc_image), the production base (Fedora/CentOS bootc).
    type: str
    choices: [debian, bootc]
    default: debian
  bootc_image:
    description:
      - The bootc base image for O(base=bootc), pulled when missing, for example V(quay.io/fedora/fedora-bootc:43).
        Its C(bootc) must have C(container export) (bootc 1.14 or later).
      - The stage key covers the reference, not the image it names now; pin a digest (V(image@sha256:...)) or use
        O(force=true) after the tag moved.
    type: str
  containerfile:
    description:
      - The maintenance image's Containerfile, relative to O(src) or absolute; its build context is O(src).
    type: path
    default: maintenance_os/Containerfile
  suite:
    description: Debian suite of the Debian base and of the tool images' base.
    type: str
    default: trixie
  mirror:
    description:
      - Debian mirror for O(suite). Default - the mirror the build host's apt sources use (security archives left out),
        else V(http://deb.debian.org/debian).
    type: str
  src:
    description:
      - Directory holding C(maintenance_os/) and C(common/) - a checkout or the installed collection.
      - Default - this collection's own copy, which is on the controller; give it when the task runs on another host.
    type: path
  dest:
    description: Output directory of the ISO and its C(.sha256) file. Created when missing (its parent must exist).
    type: path
    required: true
  name:
    description: The ISO's file name before the digest, C(<name>-<digest>.iso).
    type: str
    default: l3metal-maintenance
  keep:
    description: How many C(<name>-*.iso) to keep in O(dest), the new one included; V(0) keeps all.
    type: int
    default: 2
  cache_dir:
    description:
      - Where the stages are kept between runs (Debian packages, podman's image store, squashfs, initramfs). Bounded - the
        two newest results of each stage stay.
    type: path
    default: /var/cache/l3metal/maintenance_iso
  site:
    description:
      - The site settings (the site layer, C(maintenance_os/site/)), as options. The ISO then holds them - with a node key or
        registry credentials it is written readable by its owner only (unless O(mode) says otherwise); keep it as private as
        the key.
    type: dict
    suboptions:
      receiver_url:
        description:
          - The webhook receiver the node reports pre-flight failures to (no medium, an unreadable recipe), signed with the
            site node key. The kernel command line's C(l3metal.receiver=<url>) (O(kernel_cmdline_extra)) overrides it.
        type: str
      receiver_ca:
        description: PEM CA certificate(s) of an https receiver (also used for the per-job callbacks).
        type: str
      node_key:
        description: The site node key (the receiver's C(--node-key-file)), for example the output of C(openssl rand -hex 32).
        type: str
      registry_ca:
        description: PEM CA certificate(s) of the OS image registry (the image steps' C(OCI_CA_FILE)).
        type: str
      registry_auth:
        description: Registry credentials for the image steps, a docker/podman C(config.json) (mapping or JSON text).
        type: raw
      registry_insecure:
        description: Plain HTTP to the registry (a lab registry only; C(OCI_INSECURE)).
        type: bool
  site_dir:
    description: A site directory in the format of C(maintenance_os/site/example/) (C(site.env) required), instead of O(site).
    type: path
  kernel_cmdline_extra:
    description:
      - Kernel arguments after the live ones (C(root=live:CDLABEL=<label> rd.live.image rd.live.ram=1 rd.live.overlay.overlayfs=1)).
      - Only this changing rebuilds only the ISO (seconds), for example a C(l3metal.receiver=<url>) per lab.
    type: str
    default: console=tty0 console=ttyS0,115200n8
  label:
    description: ISO volume id, which the initramfs looks for (C(root=live:CDLABEL=)). Upper-case letters, digits and C(_), up to 32.
    type: str
    default: L3M_MAINT
  tools_registry:
    description:
      - Registry path of the tool images, as the Quadlet files' C(Image=) lines name them in the ISO (C(maintenance_os/Containerfile)'s
        C(TOOLS_REGISTRY)). Nothing is pulled from it; the images are built here.
    type: str
    default: registry.example.com/l3metal/tools
  tool_build_args:
    description:
      - Extra build arguments per tool image, for example C({firmware-flasher: {FLASH_COMMAND: "..."}}). C(BASE) and C(INSTALL)
        are the module's own.
    type: dict
    default: {}
  containers_conf:
    description:
      - A C(containers.conf) for podman's builds (E(CONTAINERS_CONF)), for hosts that need a runtime or ulimits set.
    type: path
  squashfs_level:
    description: zstd level of the squashfs images (1-22); lower builds faster and makes a bigger ISO.
    type: int
    default: 15
  force:
    description: Rebuild every stage, without podman's layer cache (downloaded Debian packages are still reused).
    type: bool
    default: false
requirements:
  - root on the build host
  - mmdebstrap, podman (with skopeo), squashfs-tools, grub-common, grub-pc-bin, grub-efi-amd64-bin, xorriso, mtools
notes:
  - The ISO needs at least 1.5 GiB of RAM on the server (the squashfs is copied to RAM); 2 GiB is what the tests use.
  - One build at a time per O(cache_dir) (a lock file); a second waits.
seealso:
  - module: l3metal.provision.task_iso
  - module: l3metal.provision.oci_artifact
'''

EXAMPLES = r'''
- name: Build the maintenance ISO for this site
  l3metal.provision.maintenance_iso:
    dest: /srv/l3metal/iso
    site:
      receiver_url: https://provision.example.com:8443
      receiver_ca: "{{ lookup('file', 'files/receiver-ca.pem') }}"
      node_key: "{{ vault_site_node_key }}"
  become: true
  delegate_to: localhost
  register: maintenance

- name: The same from a site directory, on a build host with its own copy of the collection
  l3metal.provision.maintenance_iso:
    src: /opt/l3metal/ansible_collections/l3metal/provision
    dest: /srv/l3metal/iso
    site_dir: /etc/l3metal/site
    mirror: http://ftp.de.debian.org/debian
  become: true

- name: Production base (bootc)
  l3metal.provision.maintenance_iso:
    base: bootc
    bootc_image: quay.io/fedora/fedora-bootc:43
    dest: /srv/l3metal/iso
    name: maintenance-bootc
    site_dir: /etc/l3metal/site
  become: true

- name: What would be built (check mode)
  l3metal.provision.maintenance_iso:
    dest: /srv/l3metal/iso
  check_mode: true
  register: plan
'''

RETURN = r'''
path:
  description: The ISO, C(<dest>/<name>-<digest>.iso) (in check mode, where it would be).
  returned: always
  type: str
  sample: /srv/l3metal/iso/l3metal-maintenance-3f1c9e2a7b5d4c60.iso
sha256_file:
  description: Its checksum file, C(sha256sum -c) format.
  returned: always
  type: str
  sample: /srv/l3metal/iso/l3metal-maintenance-3f1c9e2a7b5d4c60.iso.sha256
sha256:
  description: SHA-256 of the ISO; null in check mode when it is not built yet.
  returned: always
  type: str
  sample: 9a3c5e0f0d3b4a6e8f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a
size:
  description: Size of the ISO in bytes; null in check mode when it is not built yet.
  returned: always
  type: int
  sample: 305135616
inputs_digest:
  description: The digest of every input of the ISO (the first 16 hex digits are in its name).
  returned: always
  type: str
  sample: 3f1c9e2a7b5d4c60a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718
base:
  description: V(debian) or V(bootc).
  returned: always
  type: str
  sample: debian
label:
  description: The ISO's volume id.
  returned: always
  type: str
  sample: L3M_MAINT
kernel_cmdline:
  description: The kernel command line GRUB boots.
  returned: always
  type: str
  sample: root=live:CDLABEL=L3M_MAINT rd.live.image rd.live.ram=1 rd.live.overlay.overlayfs=1 console=tty0 console=ttyS0,115200n8
kernel_version:
  description: The kernel on the ISO (known once its initramfs stage was built on this cache).
  returned: always
  type: str
  sample: 6.12.57+deb13-amd64
stages:
  description:
    - Per stage (C(base), C(toolbase), C(tools), C(image), C(initramfs), C(squashfs), C(iso)) - C(status) (V(built), V(reused),
      V(not needed) when a later stage was reused, V(external) for the bootc base; V(build) in check mode for what would be
      built), C(key) (16 hex digits of its inputs digest) and C(seconds).
  returned: always
  type: dict
  sample: {iso: {status: built, key: 3f1c9e2a7b5d4c60, seconds: 4.2}, squashfs: {status: built, key: 0a9b8c7d6e5f4a3b, seconds: 48.0}}
rebuilt:
  description: The stages built (in check mode, to be built), in build order.
  returned: always
  type: list
  elements: str
  sample: [image, squashfs, iso]
reused:
  description: The stages whose cached result was used.
  returned: always
  type: list
  elements: str
  sample: [tools, initramfs]
durations:
  description: Seconds per built stage, and C(total) for the whole task (not in check mode).
  returned: always
  type: dict
  sample: {image: 21.4, squashfs: 48.0, iso: 4.2, total: 74.9}
tool_images:
  description: The tool images in the ISO's image store (every Quadlet step's C(Image=)).
  returned: always
  type: list
  elements: str
  sample: [registry.example.com/l3metal/tools/partition:1.0.0]
omitted:
  description:
    - What is left out because a tool image cannot be built (its Containerfile copies a file that is not there, for example
      Supermicro's SUM) - C(tools) (tool and why), C(steps) (Quadlet files) and C(targets) (the targets that need them: a recipe
      naming one fails the dispatcher's pre-flight check).
  returned: always
  type: dict
  sample: {tools: {supermicro-flasher: "its Containerfile copies maintenance_os/tools/supermicro-flasher/vendor/sum, which is not there"},
           steps: [supermicro-flash.container], targets: [supermicro-update.target]}
cache_dir:
  description: The cache directory used.
  returned: always
  type: str
  sample: /var/cache/l3metal/maintenance_iso
log_dir:
  description: The directory with every build command's output, one file per stage (null in check mode).
  returned: always
  type: str
  sample: /var/cache/l3metal/maintenance_iso/logs/20261203T150000-4242
'''

import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.l3metal.provision.plugins.module_utils._maintenance_iso.build import MaintenanceIsoBuild
from ansible_collections.l3metal.provision.plugins.module_utils._maintenance_iso.errors import CommandError, MaintenanceIsoError, MissingToolError
from ansible_collections.l3metal.provision.plugins.module_utils._maintenance_iso.settings import (
    DEFAULT_CACHE_DIR,
    DEFAULT_CMDLINE_EXTRA,
    DEFAULT_LABEL,
    DEFAULT_NAME,
    DEFAULT_SQUASHFS_LEVEL,
    DEFAULT_SUITE,
    DEFAULT_TOOLS_REGISTRY,
    host_mirror,
    spec_from_params,
)


def argument_spec() -> dict:
    return dict(
        base=dict(type='str', choices=['debian', 'bootc'], default='debian'),
        bootc_image=dict(type='str'),
        containerfile=dict(type='path', default='maintenance_os/Containerfile'),
        suite=dict(type='str', default=DEFAULT_SUITE),
        mirror=dict(type='str'),
        src=dict(type='path'),
        dest=dict(type='path', required=True),
        name=dict(type='str', default=DEFAULT_NAME),
        keep=dict(type='int', default=2),
        cache_dir=dict(type='path', default=DEFAULT_CACHE_DIR),
        site=dict(type='dict', options=dict(
            receiver_url=dict(type='str'),
            receiver_ca=dict(type='str'),
            node_key=dict(type='str', no_log=True),
            registry_ca=dict(type='str'),
            registry_auth=dict(type='raw', no_log=True),
            registry_insecure=dict(type='bool'),
        )),
        site_dir=dict(type='path'),
        kernel_cmdline_extra=dict(type='str', default=DEFAULT_CMDLINE_EXTRA),
        label=dict(type='str', default=DEFAULT_LABEL),
        tools_registry=dict(type='str', default=DEFAULT_TOOLS_REGISTRY),
        tool_build_args=dict(type='dict', default={}),
        containers_conf=dict(type='path'),
        squashfs_level=dict(type='int', default=DEFAULT_SQUASHFS_LEVEL),
        force=dict(type='bool', default=False),
    )


def main() -> None:
    module = AnsibleModule(
        argument_spec=argument_spec(),
        supports_check_mode=True,
        mutually_exclusive=[('site', 'site_dir')],
        required_if=[('base', 'bootc', ('bootc_image',))],
        add_file_common_args=True,
    )
    params = module.params
    if not params['src']:
        module.fail_json(msg='src: give the directory holding maintenance_os/ and common/ (a checkout or the installed collection); '
                             'the default, the collection\'s own copy, is filled in on the controller by the action plugin')
    try:
        spec = spec_from_params(params, mirror=host_mirror())
        build = MaintenanceIsoBuild(spec)
        if module.check_mode:
            plan = build.check_plan()
            result = build.result()
            changed = plan['iso'] == 'build'
        else:
            result = build.run()
            changed = build.stages['iso'].status == 'built'
    except MissingToolError as exc:
        module.fail_json(msg=str(exc), missing=exc.tools)
    except CommandError as exc:
        module.fail_json(msg=str(exc), stage=exc.stage, cmd=exc.argv, rc=exc.returncode, log=exc.log)
    except MaintenanceIsoError as exc:
        module.fail_json(msg=str(exc), option=exc.option)
    except Exception as exc:  # pylint: disable=broad-exception-caught
        module.fail_json(msg='unexpected error while building the maintenance ISO: %s' % exc, exception=traceback.format_exc())

    for warning in build.warnings:
        module.warn(warning)
    if not module.check_mode:
        for path in (result['path'], result['sha256_file']):
            file_args = module.load_file_common_arguments(params, path=path)
            changed = module.set_fs_attributes_if_different(file_args, changed)
    module.exit_json(changed=changed, **result)


if __name__ == '__main__':
    main()
