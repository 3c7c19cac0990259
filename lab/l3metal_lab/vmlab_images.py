# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the VM lab's servers boot and install, from ``l3metal_lab.node_images`` (nothing of its own is built here).

- the maintenance ISO through the real role ``l3metal.provision.maintenance_iso`` (``node_images.maintenance_iso``; cold
  a few minutes, then seconds: the module's cache).  Its kernel command line names the receiver for pre-flight failures
  (``l3metal.receiver=http://10.0.2.2:<port>``), so the lab's receiver listens on that port (``receiver_port``: 18480 or
  ``$L3METAL_E2E_RECEIVER_PORT``) and holds the site node key baked into it (``--node-key-file``);
- the Debian OS image (``node_images.linux_rootfs``), the two-image WIM (``node_images.windows_wim``), both cached.

The disk checks are ``l3metal_lab.diskcheck`` (read back from the raw disk image on the host).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import time
import typing as t
from pathlib import Path

from . import node_images as _images
from .node_images import LabImageError, MaintenanceIso

ImagesUnavailable = LabImageError
T = t.TypeVar('T')


@dataclasses.dataclass
class NodeImages:
    iso: MaintenanceIso         # the live maintenance ISO (hybrid BIOS + UEFI) and what the role reported
    receiver_port: int          # the receiver port its kernel command line names
    linux_rootfs: Path | None   # rootfs.tar.gz: the image-linux artifact
    windows_wim: Path | None    # install.wim, node_images.WIM_INDEX the image to apply
    seconds: dict[str, float]   # build (or cache look-up) time per image

    @property
    def maintenance_iso(self) -> Path:
        return self.iso.path

    @property
    def origin(self) -> str:
        return 'maintenance_iso role (%s), l3metal_lab.node_images' % ('built now' if self.iso.changed else 'up to date in the cache')


def _timed(seconds: dict[str, float], name: str, build: t.Callable[[], T]) -> T:
    start = time.monotonic()
    try:
        return build()
    finally:
        seconds[name] = round(time.monotonic() - start, 1)


def node_images(need: t.Collection[str] = ('linux', 'windows'), receiver_port: int | None = None) -> NodeImages:
    """The maintenance ISO and the images in ``need`` ('linux', 'windows'), built now or found in the checkout's cache.

    Cold, the OS image (mmdebstrap, ~1.5 min) is built while the role builds the ISO (~4 min): much of both is waiting
    for downloads and disks, so on two cores the pair takes little more than the ISO alone."""
    port = receiver_port if receiver_port is not None else _images.e2e_receiver_port()
    seconds: dict[str, float] = {}
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix='node-images') as pool:
        others = pool.submit(lambda: (_timed(seconds, 'linux_rootfs', _images.linux_rootfs) if 'linux' in need else None,
                                      _timed(seconds, 'windows_wim', _images.windows_wim) if 'windows' in need else None))
        iso = _timed(seconds, 'maintenance_iso', lambda: _images.maintenance_iso(port))
        rootfs, wim = others.result()
    return NodeImages(iso, port, rootfs, wim, seconds)
