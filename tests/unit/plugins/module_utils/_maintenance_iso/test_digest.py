# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Input digests: contents count, timestamps and bytecode do not."""

from __future__ import annotations

import hashlib
import os

import pytest

from ansible_collections.l3metal.provision.plugins.module_utils._maintenance_iso.digest import Digest, tree_entries, tree_sha256


def make_tree(root):
    (root / 'pkg' / '__pycache__').mkdir(parents=True)
    (root / 'pkg' / 'a.py').write_text('print(1)\n')
    (root / 'pkg' / '__pycache__' / 'a.cpython-313.pyc').write_bytes(b'bytecode')
    (root / 'bin').mkdir()
    (root / 'bin' / 'tool').write_text('#!/bin/sh\n')
    (root / 'link').symlink_to('pkg/a.py')
    return root


def test_touching_a_file_changes_nothing_editing_it_does(tmp_path):
    root = make_tree(tmp_path / 't')
    before = tree_sha256(str(root))
    os.utime(root / 'pkg' / 'a.py', (1, 1))
    assert tree_sha256(str(root)) == before
    (root / 'pkg' / 'a.py').write_text('print(2)\n')
    assert tree_sha256(str(root)) != before


def test_bytecode_is_not_part_of_a_tree(tmp_path):
    root = make_tree(tmp_path / 't')
    before = tree_sha256(str(root))
    (root / 'pkg' / '__pycache__' / 'a.cpython-313.pyc').write_bytes(b'other bytecode')
    (root / 'pkg' / 'b.pyc').write_bytes(b'stray')
    assert tree_sha256(str(root)) == before
    assert [rel for rel, _ in tree_entries(str(root))] == ['link', 'bin/tool', 'bin/', 'pkg/a.py', 'pkg/']


def test_the_executable_bit_and_symlink_targets_count(tmp_path):
    root = make_tree(tmp_path / 't')
    before = tree_sha256(str(root))
    os.chmod(root / 'bin' / 'tool', 0o755)
    after_chmod = tree_sha256(str(root))
    assert after_chmod != before
    (root / 'link').unlink()
    (root / 'link').symlink_to('bin/tool')
    assert tree_sha256(str(root)) != after_chmod


def test_a_file_entry_is_its_content_hash(tmp_path):
    root = make_tree(tmp_path / 't')
    entries = dict(tree_entries(str(root)))
    assert entries['pkg/a.py'] == 'file - ' + hashlib.sha256(b'print(1)\n').hexdigest()
    assert entries['link'] == 'symlink pkg/a.py'


def test_a_stage_key_covers_the_keys_it_is_built_from():
    base = Digest('base').value('packages', ['a', 'b'])
    image = Digest('image').key('base', base).value('x', 1)
    other_base = Digest('base').value('packages', ['a', 'c'])
    assert Digest('image').key('base', other_base).value('x', 1).hexdigest() != image.hexdigest()
    assert Digest('image').key('base', Digest('base').value('packages', ['a', 'b'])).value('x', 1).hexdigest() == image.hexdigest()
    assert len(image.short()) == 16 and image.hexdigest().startswith(image.short())


def test_order_and_stage_name_count_and_an_input_cannot_be_given_twice():
    assert Digest('a').value('x', 1).value('y', 2).hexdigest() != Digest('a').value('y', 2).value('x', 1).hexdigest()
    assert Digest('a').value('x', 1).hexdigest() != Digest('b').value('x', 1).hexdigest()
    with pytest.raises(ValueError, match="input 'x' given twice"):
        Digest('a').value('x', 1).value('x', 2)


def test_a_missing_path_is_recorded_as_missing(tmp_path):
    digest = Digest('a').tree('t', str(tmp_path / 'nope')).file('f', str(tmp_path / 'nope.txt'))
    assert digest.inputs == {'t': 'missing', 'f': 'missing'}
