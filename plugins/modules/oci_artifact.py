#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: oci_artifact
short_description: Push, pull (and unpack) or delete OS images and tools stored as OCI artifacts
version_added: 0.1.0
description:
  - Manages artifacts in an OCI registry, the single source of truth for OS images (rootfs C(.tar.gz), Windows C(.wim))
    and tool images.
  - O(state=present) pushes O(files) as one artifact, one layer per file, with its artifact type, per-layer media types and
    annotations. The manifest is composed deterministically, so pushing identical content again finds the tag already at
    that digest and reports no change. Blobs the registry does not have yet are uploaded (streamed; in chunks above
    64 MiB), then the manifest.
  - O(state=pulled) fetches the artifact into the directory O(dest). Every blob's digest and size are verified while it
    streams; a mismatch fails and leaves no half-written file or tree behind.
  - With O(unpack=true), each tar layer (C(.tar), C(.tar.gz), C(.tar.zst), C(.tar.xz); compression is detected from the
    bytes) is streamed straight into O(dest) without a temporary copy of the archive, keeping owners (numeric, when
    running as root), modes including setuid, xattrs, hard links and symlinks. Members with C(../) or absolute paths,
    hard links out of the archive and relative symlinks that climb out of O(dest) are refused, and no symlink is ever
    followed while writing. The tree is unpacked into a hidden staging directory and moved into place only after every
    digest matched. C(dest/.oci-artifact.json) records what was unpacked; the same manifest digest again means no change.
  - Without O(unpack), each layer is saved as C(dest/<title>) (its C(org.opencontainers.image.title) annotation), written
    to a temporary file and renamed after verification. Files that already hold the right content are not downloaded.
  - O(state=absent) deletes the manifest the reference points to, and with it every tag pointing to it (the distribution
    API deletes manifests by digest, not single tags). The registry must allow deletes.
author:
  - l3metal.provision contributors (@l3metal)
extends_documentation_fragment:
  - l3metal.provision.attributes
  - l3metal.provision.oci
attributes:
  check_mode:
    support: full
    details:
      - O(state=present) hashes the files and compares the manifest digest with the registry's; nothing is uploaded.
      - O(state=pulled) reads the manifest and compares it with O(dest); nothing is downloaded or written.
  diff_mode:
    support: partial
    details: Shows the manifest digest before and after.
options:
  state:
    description:
      - V(present) pushes O(files) to O(reference) (which must carry a tag).
      - V(pulled) fetches the artifact into O(dest).
      - V(absent) deletes the manifest O(reference) points to.
    type: str
    choices: [present, pulled, absent]
    default: present
  files:
    description:
      - Files to push with O(state=present), one layer each, in this order.
      - Each item is a path, or a mapping with C(path) (required), C(media_type), C(title) (default the file's base name)
        and C(annotations) (a mapping of layer annotations).
      - The media type defaults from the extension, for example C(application/vnd.oci.image.layer.v1.tar+gzip) for
        C(.tar.gz) and C(.tgz), C(...tar+zstd) for C(.tar.zst), C(application/x-ms-wim) for C(.wim), else
        C(application/octet-stream).
    type: list
    elements: raw
  artifact_type:
    description:
      - The manifest's C(artifactType), for example V(application/vnd.l3metal.rootfs.v1+tar).
      - When set, the config is the OCI empty descriptor (C(application/vnd.oci.empty.v1+json)), as the OCI 1.1 image
        spec recommends for artifacts; when not set, the config media type is C(application/vnd.unknown.config.v1+json).
    type: str
  annotations:
    description:
      - Manifest annotations for O(state=present), for example C(org.opencontainers.image.version).
    type: dict
  dest:
    description:
      - Directory to pull into with O(state=pulled). Created when missing (its parent must exist).
    type: path
  unpack:
    description:
      - With O(state=pulled), unpack the tar layers into O(dest) instead of saving the layer files. Other layers are skipped.
    type: bool
    default: false
  force:
    description:
      - With O(state=pulled) and O(unpack=true), unpack again even when C(dest/.oci-artifact.json) names the same digest.
    type: bool
    default: false
requirements:
  - requests
  - zstandard (only to unpack C(.tar.zst) layers)
notes:
  - Unpacking over an existing tree replaces files and symlinks of the same name and merges directories, like C(tar x);
    files that the artifact does not contain stay.
  - Unpacking as a non-root user cannot restore owners or create device nodes.
seealso:
  - module: l3metal.provision.oci_artifact_info
'''

EXAMPLES = r'''
- name: Publish an Ubuntu root file system
  l3metal.provision.oci_artifact:
    reference: registry.example.com/os-images/ubuntu-rootfs:22.04
    files:
      - /srv/build/ubuntu-rootfs.tar.gz
    artifact_type: application/vnd.l3metal.rootfs.v1+tar
    annotations:
      org.opencontainers.image.version: "22.04.5"
    username: ci
    password: "{{ registry_token }}"
  register: pushed

- name: Publish a Windows image with an explicit media type and title
  l3metal.provision.oci_artifact:
    reference: registry.example.com/os-images/windows-wim:2022
    files:
      - path: /srv/build/install.wim
        media_type: application/x-ms-wim
        title: install.wim
    docker_config: /etc/l3metal/registry-auth.json
    ca_path: /etc/pki/l3metal-ca.pem

- name: Unpack a pinned root file system into a mounted target
  l3metal.provision.oci_artifact:
    reference: "registry.example.com/os-images/ubuntu-rootfs@{{ pushed.digest }}"
    state: pulled
    dest: /mnt/new-root
    unpack: true

- name: Fetch the layer files of an artifact
  l3metal.provision.oci_artifact:
    reference: registry.example.com/tools/firmware:1.2
    state: pulled
    dest: /srv/firmware/1.2

- name: Remove an old image
  l3metal.provision.oci_artifact:
    reference: registry.example.com/os-images/ubuntu-rootfs:20.04
    state: absent
'''

RETURN = r'''
reference:
  description: The reference as parsed.
  returned: always
  type: str
  sample: registry.example.com/os-images/ubuntu-rootfs:22.04
digest:
  description:
    - The manifest digest pushed (V(present)), pulled (V(pulled)) or deleted (V(absent)); null when O(state=absent)
      found nothing.
  returned: always
  type: str
  sample: sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b
previous_digest:
  description: With O(state=present), the digest the tag pointed to before (null if it did not exist).
  returned: when O(state=present)
  type: str
layers:
  description: The artifact's layers (for V(pulled), the ones this run considered).
  returned: always
  type: list
  elements: dict
  contains:
    digest:
      description: Layer digest.
      type: str
    size:
      description: Size in bytes.
      type: int
    media_type:
      description: Layer media type.
      type: str
    title:
      description: The C(org.opencontainers.image.title) annotation.
      type: str
    action:
      description: >-
        With V(pulled): V(unpacked), V(downloaded), V(unchanged), or V(skipped) (not a tar layer while unpacking);
        with V(present): V(uploaded) or V(present) (the registry had it).
      type: str
    path:
      description: With V(pulled), where the layer went.
      type: str
  sample:
    - digest: sha256:0f4a1e6c8b2c0d3e5f7a9b1c3d5e7f9a1b3c5d7e9f1a3b5c7d9e1f3a5b7c9d1e
      size: 73428672
      media_type: application/vnd.oci.image.layer.v1.tar+gzip
      title: ubuntu-rootfs.tar.gz
      action: unpacked
      path: /mnt/new-root
artifact_type:
  description: Artifact type (C(artifactType), else the config media type).
  returned: when a manifest was read or written
  type: str
dest:
  description: The directory pulled into.
  returned: when O(state=pulled)
  type: str
bytes_downloaded:
  description: Blob bytes transferred by this run.
  returned: when O(state=pulled)
  type: int
'''

import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.l3metal.provision.plugins.module_utils._oci.client import HAS_REQUESTS, REQUESTS_IMPORT_ERROR, RegistryClient
from ansible_collections.l3metal.provision.plugins.module_utils._oci.errors import OciError
from ansible_collections.l3metal.provision.plugins.module_utils._oci.manifest import is_tar_layer
from ansible_collections.l3metal.provision.plugins.module_utils._oci.pull import plan_directory, pull_and_unpack, pull_to_directory, read_record
from ansible_collections.l3metal.provision.plugins.module_utils._oci.push import PushFile, push_artifact
from ansible_collections.l3metal.provision.plugins.module_utils._oci.reference import parse_reference
from ansible_collections.l3metal.provision.plugins.module_utils._oci_module import client_options, error_result, registry_argument_spec


def parse_files(module: AnsibleModule, items: list) -> list[PushFile]:
    files = []
    for index, item in enumerate(items):
        if isinstance(item, str):
            files.append(PushFile(item))
            continue
        if not isinstance(item, dict) or not isinstance(item.get('path'), str):
            module.fail_json(msg='files[%d]: give a path, or a mapping with path and optionally media_type, title, annotations' % index)
        unknown = set(item) - {'path', 'media_type', 'title', 'annotations'}
        if unknown:
            module.fail_json(msg='files[%d]: unknown keys %s (allowed: path, media_type, title, annotations)' % (index, ', '.join(sorted(unknown))))
        annotations = item.get('annotations') or {}
        if not isinstance(annotations, dict):
            module.fail_json(msg='files[%d].annotations must be a mapping' % index)
        files.append(PushFile(item['path'], item.get('media_type'), item.get('title'), {str(k): str(v) for k, v in annotations.items()}))
    return files


def run_present(module: AnsibleModule) -> dict:
    params = module.params
    if not params['files']:
        module.fail_json(msg='state=present needs files (the paths to push)')
    result = push_artifact(params['reference'], parse_files(module, params['files']), artifact_type=params['artifact_type'],
                           annotations=params['annotations'], check_mode=module.check_mode, **client_options(params))
    uploaded = set(result.uploaded)
    layers = [dict(digest=layer['digest'], size=layer['size'], media_type=layer['mediaType'],
                   title=layer['annotations'].get('org.opencontainers.image.title'),
                   action='uploaded' if layer['digest'] in uploaded else 'present')
              for layer in result.manifest['layers']]
    out = dict(changed=result.changed, digest=result.digest, previous_digest=result.previous_digest, layers=layers,
               artifact_type=result.manifest.get('artifactType') or result.manifest['config']['mediaType'])
    if module._diff:
        out['diff'] = dict(before=dict(digest=result.previous_digest), after=dict(digest=result.digest))
    return out


def run_pulled(module: AnsibleModule) -> dict:
    params = module.params
    dest = params['dest']
    if not dest:
        module.fail_json(msg='state=pulled needs dest (the directory to pull into)')
    options = client_options(params)
    ref = parse_reference(params['reference'])
    if module.check_mode:
        with RegistryClient(ref.registry, **options) as client:
            manifest = client.get_manifest(ref)
        if params['unpack']:
            record = read_record(dest)
            changed = params['force'] or not record or record.get('digest') != manifest.digest
            layers = [dict(layer.as_dict(), action=('unpacked' if changed else 'unchanged') if is_tar_layer(layer) else 'skipped', path=dest)
                      for layer in manifest.layers]
            previous = record.get('digest') if record else None
        else:
            plan = plan_directory(manifest, dest)
            changed = not all(present for _layer, _path, present in plan)
            layers = [dict(layer.as_dict(), action='unchanged' if present else 'downloaded', path=path) for layer, path, present in plan]
            previous = None
        out = dict(changed=changed, digest=manifest.digest, layers=layers, artifact_type=manifest.artifact_type, dest=dest, bytes_downloaded=0)
    else:
        if params['unpack']:
            previous_record = read_record(dest)
            previous = previous_record.get('digest') if previous_record else None
            pulled = pull_and_unpack(ref, dest, force=params['force'], **options)
        else:
            previous = None
            pulled = pull_to_directory(ref, dest, **options)
        layers = [dict(digest=layer.digest, size=layer.size, media_type=layer.media_type, title=layer.title, action=layer.action, path=layer.path)
                  for layer in pulled.layers]
        out = dict(changed=pulled.changed, digest=pulled.digest, layers=layers, artifact_type=pulled.artifact_type, dest=dest,
                   bytes_downloaded=pulled.bytes_downloaded)
    if module._diff and params['unpack']:
        out['diff'] = dict(before=dict(digest=previous), after=dict(digest=out['digest']))
    return out


def run_absent(module: AnsibleModule) -> dict:
    ref = parse_reference(module.params['reference'])
    with RegistryClient(ref.registry, **client_options(module.params)) as client:
        digest = client.resolve(ref)
        if digest is None:
            return dict(changed=False, digest=None, layers=[])
        manifest = client.get_manifest(ref.with_digest(digest))
        layers = [layer.as_dict() for layer in manifest.layers]
        deleted = True if module.check_mode else client.delete_manifest(ref, digest)
    out = dict(changed=deleted, digest=digest, layers=layers, artifact_type=manifest.artifact_type)
    if module._diff:
        out['diff'] = dict(before=dict(digest=digest), after=dict(digest=None))
    return out


def main() -> None:
    argument_spec = registry_argument_spec()
    argument_spec.update(
        state=dict(type='str', choices=['present', 'pulled', 'absent'], default='present'),
        files=dict(type='list', elements='raw'),
        artifact_type=dict(type='str'),
        annotations=dict(type='dict'),
        dest=dict(type='path'),
        unpack=dict(type='bool', default=False),
        force=dict(type='bool', default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_if=[('state', 'present', ['files']), ('state', 'pulled', ['dest'])])
    if not HAS_REQUESTS:
        module.fail_json(msg=missing_required_lib('requests'), exception=str(REQUESTS_IMPORT_ERROR))
    state = module.params['state']
    try:
        if state == 'present':
            result = run_present(module)
        elif state == 'pulled':
            result = run_pulled(module)
        else:
            result = run_absent(module)
    except OciError as exc:
        module.fail_json(**error_result(exc))
    except Exception as exc:  # pylint: disable=broad-exception-caught
        module.fail_json(msg='unexpected error (%s) for %s: %s' % (type(exc).__name__, module.params['reference'], exc), exception=traceback.format_exc())
    result['reference'] = str(parse_reference(module.params['reference']))
    module.exit_json(**result)


if __name__ == '__main__':
    main()
