#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r'''
module: oci_artifact_info
short_description: Read an OCI artifact's manifest, digest, layers, sizes and annotations
version_added: 0.1.0
description:
  - Resolves O(reference) in the registry and returns its verified manifest (against the pinned digest, else against the
    C(Docker-Content-Digest) the registry sends), with the layers, sizes and annotations broken out.
  - OCI image manifests and Docker v2 schema 2 manifests are read; for an index (multi-platform image) the module fails
    and lists the manifests to pin by digest.
  - A reference that does not exist is not an error; RV(exists) is then V(false).
author:
  - l3metal.provision contributors (@l3metal)
extends_documentation_fragment:
  - l3metal.provision.attributes
  - l3metal.provision.attributes.INFO_MODULE
  - l3metal.provision.oci
seealso:
  - module: l3metal.provision.oci_artifact
'''

EXAMPLES = r'''
- name: Which digest does the tag point to?
  l3metal.provision.oci_artifact_info:
    reference: registry.example.com/os-images/ubuntu-rootfs:22.04
    docker_config: /etc/l3metal/registry-auth.json
  register: image

- name: Pin the recipe to it
  ansible.builtin.set_fact:
    oci_url: "registry.example.com/os-images/ubuntu-rootfs@{{ image.digest }}"
  when: image.exists
'''

RETURN = r'''
exists:
  description: Whether the reference resolves to a manifest.
  returned: always
  type: bool
  sample: true
reference:
  description: The reference as parsed.
  returned: always
  type: str
  sample: registry.example.com/os-images/ubuntu-rootfs:22.04
digest:
  description: Manifest digest.
  returned: when RV(exists)
  type: str
  sample: sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b
media_type:
  description: Manifest media type (OCI image manifest or Docker v2 schema 2).
  returned: when RV(exists)
  type: str
  sample: application/vnd.oci.image.manifest.v1+json
artifact_type:
  description: C(artifactType), else the config media type.
  returned: when RV(exists)
  type: str
  sample: application/vnd.l3metal.rootfs.v1+tar
annotations:
  description: Manifest annotations.
  returned: when RV(exists)
  type: dict
  sample: {org.opencontainers.image.version: "22.04.5"}
config:
  description: The config descriptor (C(media_type), C(digest), C(size)).
  returned: when RV(exists)
  type: dict
layers:
  description: Layer descriptors in manifest order.
  returned: when RV(exists)
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
      description: The C(org.opencontainers.image.title) annotation, if any.
      type: str
    annotations:
      description: All layer annotations.
      type: dict
size:
  description: Total bytes of config and layers (what a full pull transfers, without the manifest).
  returned: when RV(exists)
  type: int
  sample: 73429000
manifest:
  description: The manifest as the registry stores it, parsed.
  returned: when RV(exists)
  type: dict
'''

import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.l3metal.provision.plugins.module_utils._oci.client import HAS_REQUESTS, REQUESTS_IMPORT_ERROR, RegistryClient
from ansible_collections.l3metal.provision.plugins.module_utils._oci.errors import OciError
from ansible_collections.l3metal.provision.plugins.module_utils._oci.reference import parse_reference
from ansible_collections.l3metal.provision.plugins.module_utils._oci_module import client_options, error_result, registry_argument_spec


def main() -> None:
    module = AnsibleModule(argument_spec=registry_argument_spec(), supports_check_mode=True)
    if not HAS_REQUESTS:
        module.fail_json(msg=missing_required_lib('requests'), exception=str(REQUESTS_IMPORT_ERROR))
    try:
        ref = parse_reference(module.params['reference'])
        with RegistryClient(ref.registry, **client_options(module.params)) as client:
            digest = client.resolve(ref)
            if digest is None:
                module.exit_json(changed=False, exists=False, reference=str(ref))
            manifest = client.get_manifest(ref.with_digest(digest))
    except OciError as exc:
        module.fail_json(**error_result(exc))
    except Exception as exc:  # pylint: disable=broad-exception-caught
        module.fail_json(msg='unexpected error (%s) for %s: %s' % (type(exc).__name__, module.params['reference'], exc), exception=traceback.format_exc())
    info = manifest.as_dict()
    info['reference'] = str(ref)
    module.exit_json(changed=False, exists=True, manifest=manifest.data, **info)


if __name__ == '__main__':
    main()
