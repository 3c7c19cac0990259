# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The pure parts of bench/_method.py: round order, median and spread, per-round ratios, the CPU split (< 0.1 s)."""

from __future__ import annotations

import itertools
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / 'bench'))
import _method  # pylint: disable=wrong-import-position,import-error


def test_two_sides_alternate_who_goes_first() -> None:
    assert [_method.order(index, ['ours', 'peer']) for index in range(4)] == [
        ['ours', 'peer'], ['peer', 'ours'], ['ours', 'peer'], ['peer', 'ours']]


def test_three_sides_every_permutation_in_six_rounds() -> None:
    rounds = [tuple(_method.order(index, 'abc')) for index in range(6)]
    assert sorted(rounds) == sorted(itertools.permutations('abc'))
    assert [first for first, *_rest in rounds] == list('abcabc')


@pytest.mark.parametrize('count', [2, 3, 4, 5])
def test_every_side_goes_first_equally_often_and_before_each_other(count: int) -> None:
    sides = list(range(count))
    rounds = [_method.order(index, sides) for index in range(2 * count)]
    assert all(sorted(order) == sides for order in rounds)
    assert [order[0] for order in rounds].count(0) == 2
    for a, b in itertools.permutations(sides, 2):
        assert any(order.index(a) < order.index(b) for order in rounds), (a, b)


def test_one_side_and_no_side() -> None:
    assert _method.order(3, ['ours']) == ['ours']
    assert _method.order(0, []) == []


def test_spread_median_min_max_quartiles() -> None:
    summary = _method.spread([5.0, 1.0, 3.0, 2.0, 4.0])
    assert summary == _method.Spread(median=3.0, low=1.0, high=5.0, q1=2.0, q3=4.0, count=5)
    even = _method.spread([1.0, 2.0, 3.0, 10.0])
    assert (even.median, even.low, even.high, even.count) == (2.5, 1.0, 10.0, 4)
    assert even.q1 == pytest.approx(1.75) and even.q3 == pytest.approx(4.75)
    assert _method.spread([0.3]) == _method.Spread(0.3, 0.3, 0.3, 0.3, 0.3, 1)
    with pytest.raises(ValueError):
        _method.spread([])


def test_ratios_are_per_round_and_the_line_keeps_the_ratio_format() -> None:
    assert _method.ratios([1.0, 2.0, 3.0], [2.0, 2.0, 2.0]) == [0.5, 1.0, 1.5]
    with pytest.raises(ValueError):
        _method.ratios([1.0], [1.0, 2.0])
    # a median of per-round ratios, not a ratio of medians: 1 round in 3 disturbed moves one ratio only
    line = _method.ratio_line('ours / peer', [1.0, 1.0, 9.0], [2.0, 4.0, 3.0])
    assert line == 'ratio = ours / peer = 0.50 (median of per-round ratios; min-max 0.25..3.00, IQR 0.38..1.75, 3 rounds)'
    assert _method.ratio_line('ours / peer', [1.0], [4.0], note='x').endswith('= 0.25 (median of per-round ratios; 1 round, no spread; x)')


def test_cpu_split() -> None:
    assert _method.split_cpus([1, 0]) == _method.CpuPlan(frozenset({0}), frozenset({1}), 'servers pinned to CPU 0, client to CPU 1')
    four = _method.split_cpus(range(4))
    assert (four.server, four.client) == (frozenset({0, 1}), frozenset({2, 3}))
    one = _method.split_cpus([3])
    assert (one.server, one.client) == (None, None) and 'only 1 usable CPU (3)' in one.note and 'unpinned' in one.note
    assert _method.taskset(frozenset({1, 0}), ['x']) == ['taskset', '-c', '0,1', 'x']
    assert _method.taskset(None, ['x']) == ['x']


def test_descendants_include_the_process_itself() -> None:
    assert _method.descendants(os.getpid())[0] == os.getpid()
