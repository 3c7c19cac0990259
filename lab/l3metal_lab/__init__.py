# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Test harness shared by every integration suite.

- ``ports``: free TCP ports on 127.0.0.1.
- ``waiting``: poll a condition with a deadline (never sleep-and-hope).
- ``services``: start a real server process, wait until it answers, stop it, keep its log.
- ``httpserver``: a static file server with Range/206, HEAD and ETag, recording every request.
- ``receiver``: the webhook receiver as a real process, with helpers to create jobs and send
  signed webhooks as a node would; ``nginx``: nginx serving a directory (reference and peer).
- ``playbook``: run ansible-playbook against localhost with this collection on the path and get
  every task's result back as data.
- ``sushy``: the sushy-tools Redfish emulator (fake driver) with auth, TLS, fixed power delay and a
  parsed access log; ``tls``: a throw-away CA and server certificate.
- ``lab``: receiver + emulator + stand-in maintenance ISO + inventories, for the playbooks and ``make demo-fleet``;
  ``node_simulator``: plays the booted node with the real dispatcher and ``provisioner notify``.
- ``vmbmc``: a Redfish BMC whose systems are QEMU VMs (sushy-tools' libvirt driver run through
  ``sushy_libvirt_adapter``, a private ``libvirtd``, domains from ``vm``, the accelerator from ``accel``);
  ``marker_media``: tiny ISOs that say on the console what booted.

Fixtures that wrap these live in ``fixtures_*.py`` modules of this package; the integration
conftest loads every such module, so a new area adds fixtures without editing shared files.
"""
