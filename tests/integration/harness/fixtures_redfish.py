# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Redfish fixtures: the sushy-tools emulator in its variants, and a BMC that never answers."""

from __future__ import annotations

import typing as t
from pathlib import Path

import pytest

from .sushy import ONE_CD_AND_USB, TWO_CDS, SilentListener, SushyEmulator


@pytest.fixture
def sushy_emulator(tmp_path: Path) -> t.Iterator[SushyEmulator]:
    """Plain HTTP with basic auth (admin/secret), one system (Off), two virtual CDs, power changes immediate."""
    with SushyEmulator(tmp_path / 'bmc', vmedia=TWO_CDS) as emulator:
        yield emulator


@pytest.fixture
def sushy_emulator_tls(tmp_path: Path) -> t.Iterator[SushyEmulator]:
    """HTTPS with a CA made for the test and basic auth; a single virtual CD and a removable (USB) slot."""
    with SushyEmulator(tmp_path / 'bmc-tls', vmedia=ONE_CD_AND_USB, tls=True) as emulator:
        yield emulator


@pytest.fixture
def sushy_factory(tmp_path: Path) -> t.Iterator[t.Callable[..., SushyEmulator]]:
    """Start emulators with other settings: ``sushy_factory(systems=3, power_delay=2, auth=None)``."""
    started: list[SushyEmulator] = []

    def start(**options: t.Any) -> SushyEmulator:
        emulator = SushyEmulator(tmp_path / ('bmc-%d' % len(started)), **options).start()
        started.append(emulator)
        return emulator

    yield start
    for emulator in started:
        emulator.stop()


@pytest.fixture
def silent_bmc() -> t.Iterator[SilentListener]:
    """A port that accepts TCP connections and never answers."""
    listener = SilentListener()
    yield listener
    listener.close()
