# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Skipping a test for a missing prerequisite, without letting CI skip what it can run.

``make test`` installs every tool the suites need (Debian packages, the virtualenv) and CI runs as
root, so in CI (``CI=true``, set by ``.ci/run``) a missing prerequisite is a broken set-up: ``require``
fails the test there instead of skipping it.  On a developer's machine (not root, no podman) it skips
with the reason.  ``limitation`` is for what this kind of machine cannot do at all (a kernel without a
driver): it skips everywhere and says so.
"""

from __future__ import annotations

import os

import pytest


def in_ci() -> bool:
    return os.environ.get('CI', '').strip().lower() in ('1', 'true', 'yes')


def require(condition: object, reason: str) -> None:
    """Skip the calling test (fail it in CI) unless ``condition`` holds."""
    if condition:
        return
    if in_ci():
        pytest.fail('prerequisite missing in CI, where make test installs everything: %s' % reason, pytrace=False)
    pytest.skip(reason)


def limitation(reason: str) -> None:
    """Skip: this machine cannot run what follows (documented in docs/testing.md), in CI too."""
    pytest.skip('limitation of this machine: %s' % reason)
