# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Action plugin of maintenance_iso: the default of ``src`` is this collection's own copy, which is on the controller.

A module runs from a temporary payload that holds only module_utils, so it cannot find ``maintenance_os/`` and
``common/`` itself.  They ship in the collection, beside ``plugins/``: this plugin passes their directory when the
task runs on the controller (a local connection, e.g. ``delegate_to: localhost``), and asks for ``src`` otherwise.
"""

from __future__ import annotations

import os
import typing as t

from ansible.plugins.action import ActionBase

# plugins/action/maintenance_iso.py -> the collection's root
COLLECTION_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = True

    def run(self, tmp: t.Any = None, task_vars: dict[str, t.Any] | None = None) -> dict[str, t.Any]:
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        if not args.get('src'):
            if self._connection.transport != 'local':
                result.update(failed=True, msg='src: give the directory holding maintenance_os/ and common/ on the build host; the default, '
                                               'this collection\'s own copy (%s), is on the controller, and this task runs over a %s '
                                               'connection' % (COLLECTION_ROOT, self._connection.transport))
                return result
            args['src'] = COLLECTION_ROOT
        result.update(self._execute_module(module_name='l3metal.provision.maintenance_iso', module_args=args, task_vars=task_vars))
        return result
