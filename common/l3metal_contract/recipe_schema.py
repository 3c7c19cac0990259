# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The recipe JSON Schema: the one source of truth.

Everything that validates a recipe uses ``RECIPE_SCHEMA`` from this file: the ``recipe_validate`` and
``task_iso`` modules, the webhook receiver, and the maintenance OS dispatcher (each runtime carries
this package: docs/architecture.md).  ``schema_json()`` is the
canonical serialization; ``task_iso`` writes it to ``/recipe.schema.json`` on every task medium and
``docs/recipe.schema.json`` is generated from it (``make schema``; a test fails when it drifted).

The file is pure Python without Ansible imports so that it can be shared that way.

Rules that JSON Schema draft-07 cannot express (one ``100%`` partition and only last, label length
per filesystem, unique mount points, payloads that may travel as separate files on the task medium,
valid base64) live in ``recipe.py``.  ``x-hint`` annotations are ignored by validators; the error
formatter in ``recipe.py`` appends them to messages so a user learns how to fix a value.
"""

from __future__ import annotations

import functools
import json
import typing as t

SCHEMA_VERSION = '1.0'
SCHEMA_ID = 'urn:l3metal:provision:recipe-schema:' + SCHEMA_VERSION

# Targets the maintenance OS ships.  The schema accepts any well-formed target name (sites add their
# own firmware targets); the dispatcher refuses to start a target that is not installed.
LINUX_TARGET = 'install-linux.target'
WINDOWS_TARGET = 'install-windows.target'
FIRMWARE_TARGET_PATTERN = '^[a-z0-9][a-z0-9-]*-update\\.target$'

# sgdisk type codes are 4 hex digits ("ef00", "8300"); full GPT type GUIDs are also accepted.
TYPE_CODE_PATTERN = '^[0-9A-Fa-f]{4}$|^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$'
SIZE_PATTERN = '^[1-9][0-9]{0,11}[KMGTkmgt]$|^100%$'
FILESYSTEMS = ('vfat', 'ext4', 'ext3', 'xfs', 'btrfs', 'ntfs', 'swap')

# registry host[:port] / repository path, then a tag, a digest, or both.  The registry host is
# mandatory (the node has no default registry) and so is a tag or digest (no implicit "latest").
_OCI_HOST = '(?:localhost|[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\\[[0-9A-Fa-f:]+\\])(?::[0-9]{1,5})?'
_OCI_PATH = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*'
_OCI_TAG = ':[A-Za-z0-9_][A-Za-z0-9._-]{0,127}'
_OCI_DIGEST = '@sha256:[a-f0-9]{64}'
OCI_REFERENCE_PATTERN = '^' + _OCI_HOST + '/' + _OCI_PATH + '(?:' + _OCI_TAG + '(?:' + _OCI_DIGEST + ')?|' + _OCI_DIGEST + ')$'

BASE64_PATTERN = '^[A-Za-z0-9+/=\\s]*$'

# Payload fields: base64 in the recipe (design addendum 4.1), written as files on the task medium.
PAYLOAD_FILES = {
    'user_data': 'user-data',
    'unattend_xml': 'unattend.xml',
    'ks_cfg': 'ks.cfg',
}


def _payload(description: str) -> dict[str, t.Any]:
    return {
        'description': description + ' Base64-encoded. task_iso moves it out of recipe.json into its own file on the medium.',
        'type': 'string',
        'contentEncoding': 'base64',
        'minLength': 1,
        'pattern': BASE64_PATTERN,
        'x-hint': 'base64-encode the file content, e.g. with the b64encode filter',
    }


RECIPE_SCHEMA: dict[str, t.Any] = {
    '$schema': 'http://json-schema.org/draft-07/schema#',
    '$id': SCHEMA_ID,
    'title': 'l3metal.provision recipe',
    'description': 'One provisioning or maintenance task for one server, read by the maintenance OS from the task medium.',
    'type': 'object',
    'required': ['task_target'],
    'additionalProperties': False,
    'properties': {
        '$schema': {
            'description': 'Optional reference to this schema, for editors.',
            'type': 'string',
        },
        'task_target': {
            'description': "The systemd target the maintenance OS starts: 'install-linux.target', 'install-windows.target', "
                           "or a firmware target ending in '-update.target' such as 'supermicro-update.target'.",
            'type': 'string',
            'maxLength': 64,
            'pattern': '^[a-z0-9][a-z0-9-]*\\.target$',
            'x-hint': 'a systemd target name such as install-linux.target, install-windows.target or supermicro-update.target',
        },
        'target_disk': {
            'description': "Block device to install to, e.g. '/dev/sda', '/dev/nvme0n1' or a stable '/dev/disk/by-id/...' path.",
            'type': 'string',
            'maxLength': 255,
            'pattern': '^/dev(?:/(?!\\.\\.?(?:/|$))[A-Za-z0-9._:+@-]+)+$',
            'x-hint': 'a device path under /dev such as /dev/sda or /dev/disk/by-id/wwn-0x5000c500a1b2c3d4',
        },
        'oci_url': {
            'description': "OCI reference of the OS image artifact (rootfs .tar.gz or .wim): 'registry[:port]/repository:tag' "
                           "or 'registry[:port]/repository@sha256:<digest>'.",
            'type': 'string',
            'maxLength': 512,
            'pattern': OCI_REFERENCE_PATTERN,
            'x-hint': 'registry.example.com/os-images/ubuntu-rootfs:22.04 or registry.example.com/os-images/ubuntu-rootfs@sha256:<64 hex>',
        },
        'firmware_url': {
            'description': 'HTTP(S) URL of the firmware file a firmware target flashes.',
            'type': 'string',
            'maxLength': 2048,
            'pattern': '^https?://[^\\s/?#]+[^\\s]*$',
            'x-hint': 'an http:// or https:// URL',
        },
        'firmware_sha256': {
            'description': 'Expected SHA-256 of the firmware file; the flasher refuses a download that does not match.',
            'type': 'string',
            'pattern': '^[0-9a-fA-F]{64}$',
            'x-hint': '64 hexadecimal digits',
        },
        'wim_index': {
            'description': 'Image index inside the WIM to apply (install-windows.target). Default 1.',
            'type': 'integer',
            'minimum': 1,
            'maximum': 1000,
        },
        'partition_layout': {
            'description': 'GPT partitions to create on target_disk, in order.',
            'type': 'array',
            'minItems': 1,
            'maxItems': 128,
            'items': {
                'type': 'object',
                'required': ['size', 'type_guid'],
                'additionalProperties': False,
                'properties': {
                    'size': {
                        'description': "Size with a K/M/G/T suffix ('512M', '20G'), or '100%' for the rest of the disk (last partition only).",
                        'type': 'string',
                        'pattern': SIZE_PATTERN,
                        'x-hint': 'use 512M, 20G or 100%',
                    },
                    'type_guid': {
                        'description': "sgdisk type code ('ef00' ESP, '8300' Linux, '0c01' MSR, '0700' basic data, 'ef02' BIOS boot) or a GPT type GUID.",
                        'type': 'string',
                        'pattern': TYPE_CODE_PATTERN,
                        'x-hint': 'a 4-digit sgdisk type code such as ef00 or 8300, or a GUID like C12A7328-F81F-11D2-BA4B-00A0C93EC93B',
                    },
                    'format': {
                        'description': 'Filesystem to create. Omit to leave the partition unformatted.',
                        'type': 'string',
                        'enum': list(FILESYSTEMS),
                    },
                    'label': {
                        'description': 'GPT partition name and filesystem label (filesystems limit the length: vfat 11, xfs 12, ext4 16, ntfs 32).',
                        'type': 'string',
                        'pattern': '^[A-Za-z0-9._-]{1,36}$',
                        'x-hint': '1 to 36 letters, digits, dots, dashes or underscores',
                    },
                    'mountpoint': {
                        'description': "Where the filesystem is mounted in the installed system ('/', '/boot/efi', ...); written to fstab.",
                        'type': 'string',
                        'maxLength': 255,
                        'pattern': '^/(?:[A-Za-z0-9._-]+(?:/[A-Za-z0-9._-]+)*)?$',
                        'x-hint': "an absolute path such as / or /boot/efi",
                    },
                },
            },
        },
        'user_data': _payload('cloud-init user-data for the installed Linux system (written to the config drive).'),
        'unattend_xml': _payload('Windows answer file, copied to Windows/Panther/unattend.xml.'),
        'ks_cfg': _payload('VMware ESXi kickstart file.'),
        'callback': {
            'description': 'Where and how the maintenance OS reports status: the webhook receiver, this job and its per-job token.',
            'type': 'object',
            'required': ['url', 'job_id', 'token'],
            'additionalProperties': False,
            'properties': {
                'url': {
                    'description': 'Base URL of the webhook receiver, e.g. https://controller.example.com:8443.',
                    'type': 'string',
                    'maxLength': 2048,
                    'pattern': '^https?://[^\\s/?#]+[^\\s?#]*$',
                    'x-hint': 'an http:// or https:// URL without query string',
                },
                'job_id': {
                    'description': 'Job id the receiver returned.',
                    'type': 'string',
                    'pattern': '^[A-Za-z0-9._-]{1,64}$',
                },
                'token': {
                    'description': 'Per-job secret used to sign webhooks (HMAC-SHA256).',
                    'type': 'string',
                    'minLength': 16,
                    'maxLength': 256,
                },
                'serial': {
                    'description': 'Server serial number used in the webhook URL; the node reads it from DMI when omitted.',
                    'type': 'string',
                    'pattern': '^[A-Za-z0-9._:-]{1,128}$',
                },
            },
        },
    },
    'allOf': [
        {
            'if': {'properties': {'task_target': {'const': LINUX_TARGET}}, 'required': ['task_target']},
            'then': {'required': ['target_disk', 'oci_url', 'partition_layout'],
                     'x-hint': LINUX_TARGET + ' needs target_disk, oci_url and partition_layout'},
        },
        {
            'if': {'properties': {'task_target': {'const': WINDOWS_TARGET}}, 'required': ['task_target']},
            'then': {'required': ['target_disk', 'oci_url', 'partition_layout'],
                     'x-hint': WINDOWS_TARGET + ' needs target_disk, oci_url (the .wim artifact), partition_layout and unattend_xml'},
        },
        {
            'if': {'properties': {'task_target': {'type': 'string', 'pattern': FIRMWARE_TARGET_PATTERN}}, 'required': ['task_target']},
            'then': {'required': ['firmware_url'], 'x-hint': 'firmware targets (*-update.target) need firmware_url'},
        },
    ],
}


@functools.lru_cache(maxsize=1)
def schema_json() -> str:
    """The canonical serialization written to task media and to docs/recipe.schema.json (computed once:
    the schema is a constant)."""
    return json.dumps(RECIPE_SCHEMA, indent=2, sort_keys=True, ensure_ascii=True) + '\n'
