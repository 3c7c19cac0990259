# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    """Connection options shared by every Redfish module (action group C(l3metal.provision.redfish))."""

    DOCUMENTATION = r'''
options:
  baseuri:
    description:
      - The BMC, as V(host), V(host:port), V([IPv6]:port) or a V(https://host[:port]) / V(http://host[:port]) URL.
        Without a scheme, HTTPS is used. A path such as V(/redfish/v1) is ignored.
      - Set it once for a whole play with C(module_defaults) and the action group C(group/l3metal.provision.redfish).
    type: str
    required: true
  username:
    description:
      - BMC account. When the service root offers a SessionService, a Redfish session is created with it and
        deleted when the module finishes, also when it fails; otherwise HTTP basic authentication is used.
      - Omit it only for a BMC (or emulator) that needs no authentication.
    type: str
  password:
    description: Password of O(username).
    type: str
  validate_certs:
    description:
      - Verify the BMC's TLS certificate. Turn off only for a lab BMC with a self-signed certificate; prefer O(ca_path).
    type: bool
    default: true
  ca_path:
    description:
      - PEM file (or directory prepared with C(c_rehash)) of the CA certificates that signed the BMC certificate.
        Used instead of the system trust store when O(validate_certs=true).
    type: path
  timeout:
    description:
      - Seconds to wait for the BMC to accept a connection and to answer each request.
    type: int
    default: 30
  retries:
    description:
      - How many times a request that failed for a transient reason is repeated, with exponential backoff starting
        at 1 second (or as long as a C(Retry-After) header asks, at most 30 seconds).
      - Transient means a connection error, or HTTP 5xx on a request that can safely be repeated, or HTTP 503 on any
        request. A POST that may have reached the BMC is not repeated unless the quirks table marks the action as
        idempotent for this vendor. Errors for bad input (4xx) are never retried.
    type: int
    default: 3
  system_id:
    description:
      - Id (for example V(System.Embedded.1) or V(1)) or C(@odata.id) path of the ComputerSystem to act on.
      - Needed only when the BMC manages several systems; the error lists them.
    type: str
  manager_id:
    description:
      - Id or C(@odata.id) path of the Manager whose C(VirtualMedia) to use.
      - By default virtual media is looked up under the system, then under the manager that manages the system.
        Setting O(manager_id) uses that manager's virtual media directly.
    type: str
requirements:
  - sushy >= 4.0 (on the host that runs the module, usually the controller)
notes:
  - These modules talk to the BMC from the host they run on, so delegate them to the controller (C(delegate_to=localhost))
    or run them against an inventory of BMCs with a local connection. See the collection's C(docs/redfish.md) for fleet
    runs (C(forks), C(throttle), C(serial)).
  - Vendor behaviour that differs from the Redfish specification is handled through a quirks table keyed on the
    system's C(Manufacturer) and C(Model); modules return the entries that applied as RV(ignore:quirks).
'''
