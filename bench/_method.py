# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The bench method every bench in bench/ uses (docs/testing.md, "Benchmarks"): one way to measure, one way to report.

- **CPUs**: the servers (ours and the peer alike) on one set of CPUs, the client (load generator, this process and the
  children it starts) on another (``os.sched_setaffinity`` for every thread of a process and its children; ``taskset``
  for children started later).  On a machine with one usable CPU there is nothing to split: the plan says so and
  everything runs unpinned.
- **Rounds**: every round measures every side once; the order alternates (``order``): with two sides ours goes first in
  even rounds and the peer in odd rounds, so neither side always gets the warmer (or the noisier) slot.
- **Ratios**: one ratio per round (ours / peer of the same round, measured minutes apart at most), then the median of
  those ratios with its spread: min-max and the interquartile range.  A median of per-round ratios is robust to a
  neighbour's burst that slows one round: it moves one ratio, not the medians of both sides.
- **Load**: the load average at the start and at the end of the run (the machine is shared; a run with a load far
  above the CPU count is noisy whatever the method).

Benches import it as ``import _method`` (``make bench BENCH=name`` runs ``bench/name.py``, so bench/ is on the path).
The pure parts (``order``, ``spread``, ``ratios``, ``ratio_line``, ``split_cpus``) are unit-tested in
tests/unit/bench/test_method.py.
"""

from __future__ import annotations

import os
import statistics
import typing as t

T = t.TypeVar('T')


# ------------------------------------------------------------------------------------------------ pure parts

def order(round_index: int, sides: t.Sequence[T]) -> list[T]:
    """The order in which the sides run in round ``round_index`` (0-based).

    Two sides alternate: ``[a, b]``, ``[b, a]``, ``[a, b]``, ...  With more sides, side ``round_index % n`` goes first and
    the others follow in their order, reversed every other cycle of ``n`` rounds: every side goes first equally often and,
    over ``2 n`` rounds, runs before and after each other side (three sides: all six permutations in six rounds).
    """
    items = list(sides)
    count = len(items)
    if count < 2:
        return items
    first = items[round_index % count]
    rest = items[:round_index % count] + items[round_index % count + 1:]
    if (round_index // count) % 2:
        rest.reverse()
    return [first] + rest


class Spread(t.NamedTuple):
    """The median of some values and how far they spread: min, max and the quartiles (inclusive method)."""

    median: float
    low: float
    high: float
    q1: float
    q3: float
    count: int


def spread(values: t.Iterable[float]) -> Spread:
    data = sorted(float(value) for value in values)
    if not data:
        raise ValueError('no values')
    if len(data) == 1:
        return Spread(data[0], data[0], data[0], data[0], data[0], 1)
    q1, _q2, q3 = statistics.quantiles(data, n=4, method='inclusive')
    return Spread(statistics.median(data), data[0], data[-1], q1, q3, len(data))


def ratios(ours: t.Sequence[float], peer: t.Sequence[float]) -> list[float]:
    """Per-round ratios ``ours[i] / peer[i]`` (the two lists are the same rounds, in the same order)."""
    if len(ours) != len(peer):
        raise ValueError('ours has %d rounds, the peer %d' % (len(ours), len(peer)))
    return [a / b if b else float('inf') for a, b in zip(ours, peer, strict=True)]


def describe(summary: Spread, digits: int = 2) -> str:
    """``min-max 0.21..0.26, IQR 0.22..0.24, 10 rounds``."""
    form = '%%.%df' % digits
    if summary.count == 1:
        return '1 round, no spread'
    return 'min-max %s..%s, IQR %s..%s, %d rounds' % (form % summary.low, form % summary.high, form % summary.q1, form % summary.q3, summary.count)


def ratio_line(label: str, ours: t.Sequence[float], peer: t.Sequence[float], digits: int = 2, note: str = '') -> str:
    """``ratio = <label> = <median of per-round ratios> (min-max .., IQR .., N rounds[; note])``."""
    summary = spread(ratios(ours, peer))
    form = '%%.%df' % digits
    return 'ratio = %s = %s (median of per-round ratios; %s%s)' % (label, form % summary.median, describe(summary, digits),
                                                                   '; ' + note if note else '')


class CpuPlan(t.NamedTuple):
    server: frozenset[int] | None  # None: unpinned
    client: frozenset[int] | None
    note: str


def split_cpus(cpus: t.Iterable[int]) -> CpuPlan:
    """Servers on the first half of the usable CPUs, the client on the rest; one CPU: unpinned, and said so."""
    usable = sorted(set(cpus))
    if len(usable) < 2:
        return CpuPlan(None, None, 'only %d usable CPU (%s): client and servers run unpinned on it'
                       % (len(usable), ','.join(map(str, usable)) or '?'))
    half = len(usable) // 2
    server, client = frozenset(usable[:half]), frozenset(usable[half:])
    return CpuPlan(server, client, 'servers pinned to CPU %s, client to CPU %s' % (cpu_list(server), cpu_list(client)))


def cpu_list(cpus: t.Iterable[int]) -> str:
    return ','.join(str(cpu) for cpu in sorted(cpus))


# ------------------------------------------------------------------------------------------------ the machine

def load_average() -> str:
    return '%.2f %.2f %.2f' % os.getloadavg()


def plan() -> CpuPlan:
    return split_cpus(os.sched_getaffinity(0))


def taskset(cpus: frozenset[int] | None, argv: t.Sequence[str]) -> list[str]:
    """``argv`` prefixed with ``taskset -c CPUS`` (as is when ``cpus`` is None)."""
    return (['taskset', '-c', cpu_list(cpus)] if cpus else []) + list(argv)


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (from /proc: the parent of each process)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % entry, encoding='ascii', errors='replace') as handle:
                parent = int(handle.read().rsplit(')', 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, ()))
    return found


def pin_tree(pid: int, cpus: frozenset[int] | None) -> int:
    """Pin every thread of ``pid`` and of its descendants to ``cpus`` (threads and processes they start later inherit
    it); the number of threads pinned.  Nothing when ``cpus`` is None."""
    if not cpus:
        return 0
    return sum(pin_threads(process, cpus) for process in descendants(pid))


def pin_threads(pid: int, cpus: frozenset[int] | None) -> int:
    """Pin every thread of ``pid`` (not its children) to ``cpus``; the number of threads pinned."""
    if not cpus:
        return 0
    pinned = 0
    try:
        tasks = os.listdir('/proc/%d/task' % pid)
    except OSError:
        return 0
    for task in tasks:
        try:
            os.sched_setaffinity(int(task), cpus)
            pinned += 1
        except OSError:  # the thread ended meanwhile
            pass
    return pinned


class Method:
    """One bench run: ``start()`` prints the CPU plan and the load; ``pin_server(pid)``, ``pin_client()``; ``end()``
    prints the load again.  ``enabled=False`` (a bench's ``--no-pin``) keeps everything unpinned and says so."""

    def __init__(self, enabled: bool = True) -> None:
        cpus = plan()
        unpinned = 'not pinned (--no-pin, or a bench whose servers the method cannot pin): client and servers share the CPUs'
        self.cpus = cpus if enabled else CpuPlan(None, None, unpinned)
        self.load_start = ''

    @property
    def server(self) -> frozenset[int] | None:
        return self.cpus.server

    @property
    def client(self) -> frozenset[int] | None:
        return self.cpus.client

    def start(self, title: str = '') -> Method:
        self.load_start = load_average()
        print('%sbench method: %s; rounds alternate which side goes first; load average at start %s (%d CPUs online)'
              % (title + ': ' if title else '', self.cpus.note, self.load_start, os.cpu_count() or 0), flush=True)
        return self

    def pin_server(self, pid: int) -> None:
        pin_tree(pid, self.server)

    def pin_client(self) -> None:
        """This process (the client) and what it starts from now on; call it after the servers were started and pinned."""
        pin_threads(os.getpid(), self.client)

    def end(self) -> str:
        line = 'load average at start %s, at end %s' % (self.load_start or '?', load_average())
        print(line, flush=True)
        return line
