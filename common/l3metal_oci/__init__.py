# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The collection's one OCI registry client: resolve, push, pull (streamed, verified), unpack, delete.

Runs on the controller (the ``oci_artifact`` modules) and in the maintenance OS's image steps
(``l3mtools.oci``).  The rule (checked by ``tests/tools/check_imports.py`` in ``make lint``): Python
3.9 or later; the standard library plus ``requests`` and, optionally, ``zstandard``; imports inside
the package are relative.  No Ansible.

One module per concern; import from the module (this file stays empty of code: its module_utils
copy must be empty, so nothing is re-exported here):

- ``errors``: the typed errors (``OciError`` and below);
- ``reference``: references, digests, media types;
- ``manifest``: descriptors, manifests, which layers are tar archives;
- ``auth``: credentials, docker config files, credential helpers, challenges;
- ``client``: ``RegistryClient`` (transport, auth flow, API calls including uploads) and ``VerifiedStream``;
- ``decompress``, ``unpack``: decompression in a thread; the layer read by ``tarfile``, the safety policy,
  safe extraction, the staging merge;
- ``pull``: ``pull_and_unpack``, ``pull_blob_to_file``, ``pull_to_directory`` and their record;
- ``push``: deterministic manifests and ``push_artifact``.
"""

from __future__ import annotations
