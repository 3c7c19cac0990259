# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Task media: format detection, labels, and the readers on images made by task_iso's code."""

from __future__ import annotations

import shutil

import pytest

from ansible_collections.l3metal.provision.plugins.module_utils import _task_media
from l3metal_lab.prerequisites import require
from provisioner import medium
from provisioner.errors import MediumError

FILES = [_task_media.MediaFile('recipe.json', b'{"task_target": "x.target"}\n'), _task_media.MediaFile('user-data', b'#cloud-config\n')]


def test_default_label_is_task_isos():
    assert medium.DEFAULT_LABEL == _task_media.DEFAULT_VOLUME_LABEL


@pytest.mark.parametrize('fmt,reader', [('iso', 'pycdlib'), ('iso', 'xorriso'), ('fat', 'mtools'), ('iso', 'auto'), ('fat', 'auto')])
def test_readers(tmp_path, fmt, reader):
    tool = {'xorriso': 'xorriso', 'mtools': 'mcopy'}.get(reader)
    if fmt == 'fat' or tool:
        require(shutil.which(tool or 'mcopy'), '%s is not installed' % (tool or 'mcopy'))
    image = tmp_path / 'medium'
    image.write_bytes(_task_media.build_media(FILES, fmt, 'JOB_42').data)
    head = image.read_bytes()[:0x8800]
    assert medium.detect_format(head) == fmt
    assert medium.volume_label(head) == 'JOB_42'
    with medium.open_medium(str(image), reader) as source:
        assert source.read('recipe.json') == FILES[0].data
        assert source.read('user-data') == FILES[1].data
        assert source.read('unattend.xml') is None


def test_wrong_reader_and_foreign_data(tmp_path):
    image = tmp_path / 'medium.iso'
    image.write_bytes(_task_media.build_media(FILES, 'iso').data)
    with pytest.raises(MediumError, match='is ISO 9660, not FAT'):
        medium.open_medium(str(image), 'mtools')
    junk = tmp_path / 'junk'
    junk.write_bytes(b'x' * 40000)
    with pytest.raises(MediumError, match='neither an ISO 9660 nor a FAT'):
        medium.open_medium(str(junk))
    with pytest.raises(MediumError, match='does not exist'):
        medium.wait_for_path(str(tmp_path / 'nope.iso'), timeout=30)


def test_find_medium_gives_up_with_a_clear_message(monkeypatch):
    monkeypatch.setattr(medium, '_by_label', lambda label: None)
    monkeypatch.setattr(medium, '_removable_candidates', lambda: [])
    slept = []
    with pytest.raises(MediumError, match='no task medium found within 0 s: no filesystem labelled L3M_TASK, nothing readable at /nonexistent/sr1'):
        medium.find_medium(default_device='/nonexistent/sr1', timeout=0, sleep=slept.append)
