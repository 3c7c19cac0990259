# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Only installed units that declare themselves provisioning targets may be started."""

from __future__ import annotations

import pytest

from provisioner import targets
from provisioner.errors import PreflightError

MARKED = '[Unit]\nDescription=x\nX-L3metal-Provisioning=yes\n'


def test_only_marked_targets_count(tmp_path):
    etc, lib = tmp_path / 'etc', tmp_path / 'lib'
    etc.mkdir()
    lib.mkdir()
    (lib / 'install-linux.target').write_text(MARKED)
    (lib / 'acme-update.target').write_text(MARKED)
    (lib / 'rescue.target').write_text('[Unit]\nDescription=Rescue\n')
    (lib / 'broken.target').write_text('not an ini file [[[')
    (lib / 'partition.service').write_text(MARKED)
    (etc / 'acme-update.target').symlink_to('/dev/null')  # masked in /etc wins over /usr/lib
    assert targets.installed_targets([str(etc), str(lib)]) == {'install-linux.target': str(lib / 'install-linux.target')}
    assert targets.check_target('install-linux.target', [str(etc), str(lib)]) == str(lib / 'install-linux.target')
    with pytest.raises(PreflightError, match=r'rescue.target is not a provisioning target installed .*\(installed: install-linux.target\)'):
        targets.check_target('rescue.target', [str(etc), str(lib)])


def test_the_checkout_targets_are_found_by_default():
    installed = targets.installed_targets(targets.default_unit_dirs())
    assert {'install-linux.target', 'install-windows.target', 'firmware-update.target', 'supermicro-update.target'} <= set(installed)
