# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The OCI pull code: the collection's plugins/module_utils/_oci.py, installed next to this file as _oci.py.

One implementation for the controller's oci_artifact module and the image tools (streamed pull,
digest check, unpack).  The tool Containerfiles copy the real file in; in a checkout it is a
relative symlink (l3mtools/_oci.py).
"""

from __future__ import annotations

import importlib
import typing as t

from .common import ToolError


def module() -> t.Any:
    try:
        return importlib.import_module('._oci', __package__)
    except ImportError as exc:
        raise ToolError('the OCI pull code (l3mtools/_oci.py from plugins/module_utils/_oci.py) is not installed in this image: %s' % exc) from None


def _call(function: str, reference: str, target: str) -> t.Any:
    implementation = getattr(module(), function)
    try:
        return implementation(reference, target)
    except ToolError:
        raise
    except Exception as exc:  # pylint: disable=broad-exception-caught  # the OCI code's own error types: one clear line for the journal
        raise ToolError('%s of %s failed: %s' % (function, reference, exc)) from exc


def pull_and_unpack(reference: str, dest_dir: str) -> t.Any:
    """Pull the rootfs artifact ``reference`` and unpack it into ``dest_dir`` (digest-checked, streamed)."""
    return _call('pull_and_unpack', reference, dest_dir)


def pull_blob_to_file(reference: str, path: str) -> t.Any:
    """Pull the single-file artifact ``reference`` (a .wim) to ``path`` (digest-checked, streamed)."""
    return _call('pull_blob_to_file', reference, path)
