# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Redfish control for the l3metal.provision modules, in small parts.

- ``errors``: typed exceptions carrying the BMC URL, the request and the BMC's extended messages.
- ``connection``: options, retries with backoff, session-or-basic auth (the session is always
  deleted), system and manager selection, plain-JSON reads (``Resource``) and writes.  sushy is the
  transport (its connector and session handling); no sushy resource class is used.
- ``quirks``: the table of vendor/model behaviours, one reason line per entry.
- ``vmedia``: virtual media discovery (Systems and Managers), slot choice, insert/eject with verification.
- ``boot``: one-time boot override, reset and waiting for a power state.
- ``args``: the option spec every Redfish module shares (documented in the ``redfish`` doc fragment).
"""
