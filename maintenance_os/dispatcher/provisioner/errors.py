# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Typed errors of the dispatcher."""

from __future__ import annotations


class PreflightError(Exception):
    """Provisioning cannot start; the message is the reason sent in the failed webhook."""


class MediumError(PreflightError):
    """The task medium is missing or unreadable."""


class ConfigError(Exception):
    """Settings a command needs (callback settings, run directory) are missing or invalid."""
