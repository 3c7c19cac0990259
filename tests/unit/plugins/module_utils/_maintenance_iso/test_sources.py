# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What the builder reads from maintenance_os/: the tool images the steps need, their order, the Debian package names."""

from __future__ import annotations

import pytest

from ansible_collections.l3metal.provision.plugins.module_utils._maintenance_iso.errors import MaintenanceIsoError
from ansible_collections.l3metal.provision.plugins.module_utils._maintenance_iso.sources import (
    SOURCE_TOOLS_REGISTRY,
    Sources,
    parse_debian_install,
)


def containerfiles_with_install(root):
    return sorted(str(path.relative_to(root / 'maintenance_os')) for path in (root / 'maintenance_os').rglob('Containerfile')
                  if 'ARG INSTALL=' in path.read_text())


def test_every_containerfile_with_an_install_argument_has_debian_package_names(collection_root):
    sources = Sources(str(collection_root))
    with_install = containerfiles_with_install(collection_root)
    assert 'Containerfile' in with_install and 'tools/base/Containerfile' in with_install
    for rel in with_install:
        assert sources.debian_install('maintenance_os/' + rel), rel
    assert set(parse_debian_install(sources.read('maintenance_os/debian-install.txt'))) == set(with_install)


def test_the_store_holds_every_image_a_quadlet_names_and_the_base_is_built_first(collection_root):
    sources = Sources(str(collection_root))
    plan = sources.tool_plan()
    named = {image for image in sources.quadlets().values() if 'supermicro' not in image}
    assert {'%s/%s:%s' % (SOURCE_TOOLS_REGISTRY, tool.name, tool.tag) for tool in plan.store} == named
    assert plan.build[0].name == 'base' and plan.build[0].parent is None
    assert all(tool.parent == 'base:1.0.0' for tool in plan.build[1:])
    assert 'base' not in {tool.name for tool in plan.store}  # built FROM, not run by a step


def test_a_tool_whose_vendor_file_is_missing_is_left_out_with_its_steps_and_targets(src):
    plan = Sources(str(src)).tool_plan()
    assert plan.omitted_tools == {'supermicro-flasher': 'its Containerfile copies maintenance_os/tools/supermicro-flasher/vendor/sum, '
                                                        'which is not there'}
    assert plan.omitted_steps == ('supermicro-flash.container',)
    assert plan.omitted_targets == ('supermicro-update.target',)
    assert plan.omit_files == ('usr/share/containers/systemd/supermicro-flash.container',
                               'usr/lib/bootc/bound-images.d/supermicro-flash.container',
                               'usr/lib/systemd/system/supermicro-update.target')


def test_with_the_vendor_file_the_supermicro_flasher_is_built_after_the_firmware_flasher(src):
    vendor = src / 'maintenance_os' / 'tools' / 'supermicro-flasher' / 'vendor'
    vendor.mkdir()
    (vendor / 'sum').write_bytes(b'\x7fELF stand-in')
    plan = Sources(str(src)).tool_plan()
    order = [tool.name for tool in plan.build]
    assert order.index('firmware-flasher') < order.index('supermicro-flasher')
    assert plan.omitted_steps == () and plan.omit_files == ()
    assert 'supermicro-flasher' in {tool.name for tool in plan.store}


def test_a_quadlet_naming_a_foreign_image_is_refused(src):
    unit = src / 'maintenance_os' / 'quadlets' / 'partition.container'
    unit.write_text(unit.read_text().replace('Image=registry.example.com/l3metal/tools/partition:1.0.0', 'Image=docker.io/library/busybox:1'))
    with pytest.raises(MaintenanceIsoError, match='partition.container: Image=docker.io/library/busybox:1 is not a tool image'):
        Sources(str(src)).tool_plan()


def test_a_containerfile_without_debian_package_names_is_named(src):
    mapping = src / 'maintenance_os' / 'debian-install.txt'
    mapping.write_text('\n'.join(line for line in mapping.read_text().splitlines() if not line.startswith('tools/config-drive/')))
    with pytest.raises(MaintenanceIsoError, match='has no line for tools/config-drive/Containerfile') as info:
        Sources(str(src)).debian_install('maintenance_os/tools/config-drive/Containerfile')
    assert info.value.option == 'src'


@pytest.mark.parametrize('text, message', [
    ('tools/x/Containerfile gdisk\n', 'line 1: expected "<Containerfile>: <packages>"'),
    ('a: x\na: y\n', 'line 2: a is listed twice'),
])
def test_the_mapping_file_is_parsed_strictly(text, message):
    with pytest.raises(MaintenanceIsoError, match=message):
        parse_debian_install(text)


def test_copy_sources_follow_continuation_lines_and_skip_stage_copies(tmp_path):
    (tmp_path / 'Containerfile').write_text('FROM x\n# COPY not/this /\nCOPY --chown=0:0 a/b \\\n     c /dest/\nCOPY --from=build /x /y\nADD d /e\n')
    assert Sources(str(tmp_path)).copy_sources('Containerfile') == ['a/b', 'c', 'd']


def test_targets_list_the_units_they_need(collection_root):
    targets = Sources(str(collection_root)).targets()
    assert {'partition.service', 'image-linux.service', 'bootloader-linux.service', 'config-drive.service'} <= targets['install-linux.target']
