# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The image steps' access to the collection's OCI code, with the site's registry settings.

The OCI code is the collection's one client, the ``l3metal_oci`` package (``common/``), installed
in the tool images: one implementation of the streamed, digest-checked pull and the safe unpack for
the controller's ``oci_artifact`` module and for the node.

Registry settings are site settings, not recipe fields (the same image serves many jobs); they come
from the environment, which the image-linux and image-windows units fill from
``/etc/l3metal/site.env`` of the maintenance image:

``OCI_CA_FILE``
    CA bundle that signed the registry's certificate.
``OCI_AUTH_FILE``
    Credentials in the ``config.json`` format of docker/podman (``{"auths": {"registry": {"auth": ...}}}``).
``OCI_INSECURE``
    ``true``: plain HTTP (a lab registry; never chosen automatically).
"""

from __future__ import annotations

import os
import typing as t

from l3metal_oci import pull as oci_pull
from l3metal_oci.errors import NotFoundError, OciError, RegistryError

from .common import ToolError

CA_FILE_VARIABLE = 'OCI_CA_FILE'
AUTH_FILE_VARIABLE = 'OCI_AUTH_FILE'
INSECURE_VARIABLE = 'OCI_INSECURE'
_TRUE = ('1', 'true', 'yes', 'on')
_FALSE = ('', '0', 'false', 'no', 'off')


def registry_options(environ: t.Mapping[str, str] | None = None) -> dict[str, t.Any]:
    """Keyword arguments for the OCI functions from the site's registry settings."""
    environ = os.environ if environ is None else environ
    options: dict[str, t.Any] = {}
    insecure = environ.get(INSECURE_VARIABLE, '').strip().lower()
    if insecure not in _TRUE + _FALSE:
        raise ToolError('%s=%s: use true or false' % (INSECURE_VARIABLE, environ[INSECURE_VARIABLE]))
    options['insecure'] = insecure in _TRUE
    for variable, key in ((CA_FILE_VARIABLE, 'ca_path'), (AUTH_FILE_VARIABLE, 'docker_config')):
        path = environ.get(variable)
        if path:
            if not os.path.isfile(path):
                raise ToolError('%s=%s does not exist in the step\'s container (site settings, /etc/l3metal/site.env)' % (variable, path))
            options[key] = path
    return options


def _call(function: t.Callable[..., oci_pull.PullResult], reference: str, target: str, **kwargs: t.Any) -> oci_pull.PullResult:
    try:
        return function(reference, target, **registry_options(), **kwargs)
    except (OciError, OSError) as exc:
        # The OCI code's own error types (digest mismatch, unsafe member, registry answers) and I/O errors (a full
        # disk): one clear line for the journal.  Its hints name the module options; here the settings are variables.
        hint = ''
        if isinstance(exc, RegistryError) and not isinstance(exc, NotFoundError):
            hint = ' (registry settings of this step: %s, %s, %s in /etc/l3metal/site.env)' % (CA_FILE_VARIABLE, AUTH_FILE_VARIABLE, INSECURE_VARIABLE)
        raise ToolError('%s of %s failed: %s%s' % (function.__name__, reference, exc, hint)) from exc


def pull_and_unpack(reference: str, dest_dir: str) -> oci_pull.PullResult:
    """Pull the rootfs artifact ``reference`` into ``dest_dir`` (digest-checked while it streams; nothing is moved
    into ``dest_dir`` unless every layer matched).  No record file is left in the new system's root."""
    return _call(oci_pull.pull_and_unpack, reference, dest_dir, record=False)


def pull_blob_to_file(reference: str, path: str) -> oci_pull.PullResult:
    """Pull the single-file artifact ``reference`` (a .wim) to ``path`` (digest-checked, streamed, atomic)."""
    return _call(oci_pull.pull_blob_to_file, reference, path)
