# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Files shared with the collection: each module here is a relative symlink to plugins/module_utils/.

They are the same files the controller uses (one recipe schema, one webhook contract), never copies.
The maintenance OS Containerfile copies the real files over the symlinks.
"""
