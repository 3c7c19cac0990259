# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The firmware flasher: download from a real HTTP server, sha256 check, then the image's vendor command."""

from __future__ import annotations

import hashlib
import json
import sys

from l3metal_lab.tools import run_tool

FIRMWARE = b'\x7fFIRMWARE' * 50000


def vendor_tool(tmp_path):
    """Stands in for the vendor's flash tool (socflash, Supermicro SUM): records its arguments and the file it got."""
    record = tmp_path / 'flashed.json'
    script = tmp_path / 'flash.py'
    script.write_text('import hashlib, json, sys\n'
                      'path = sys.argv[sys.argv.index("--file") + 1]\n'
                      'json.dump({"argv": sys.argv[1:], "sha256": hashlib.sha256(open(path, "rb").read()).hexdigest()}, open(%r, "w"))\n'
                      % str(record))
    return '%s %s -c UpdateBios --file {firmware} --note "two words"' % (sys.executable, script), record


def test_downloads_checks_and_flashes(file_server, tmp_path):
    (file_server.root / 'bios.rom').write_bytes(FIRMWARE)
    command, record = vendor_tool(tmp_path)
    digest = hashlib.sha256(FIRMWARE).hexdigest()
    proc = run_tool('firmware', tmp_path, {'FIRMWARE_URL': file_server.url + '/bios.rom', 'FIRMWARE_SHA256': digest.upper(),
                                           'FLASH_COMMAND': command, 'FIRMWARE_WORK_DIR': str(tmp_path / 'work')})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    flashed = json.loads(record.read_text())
    assert flashed['sha256'] == digest
    assert flashed['argv'] == ['-c', 'UpdateBios', '--file', str(tmp_path / 'work' / 'bios.rom'), '--note', 'two words']


def test_a_checksum_mismatch_flashes_nothing(file_server, tmp_path):
    (file_server.root / 'bios.rom').write_bytes(FIRMWARE)
    command, record = vendor_tool(tmp_path)
    proc = run_tool('firmware', tmp_path, {'FIRMWARE_URL': file_server.url + '/bios.rom', 'FIRMWARE_SHA256': '0' * 64,
                                           'FLASH_COMMAND': command, 'FIRMWARE_WORK_DIR': str(tmp_path / 'work')})
    assert proc.returncode == 1
    assert 'the recipe expects %s: not flashed' % ('0' * 64) in proc.stderr
    assert not record.exists()
    assert not (tmp_path / 'work' / 'bios.rom').exists()


def test_a_missing_file_or_command_is_an_error(file_server, tmp_path):
    command, record = vendor_tool(tmp_path)
    proc = run_tool('firmware', tmp_path, {'FIRMWARE_URL': file_server.url + '/missing.rom', 'FLASH_COMMAND': command,
                                           'FIRMWARE_WORK_DIR': str(tmp_path / 'work')})
    assert proc.returncode == 1
    assert 'cannot download firmware from %s/missing.rom: HTTP 404' % file_server.url in proc.stderr
    proc = run_tool('firmware', tmp_path, {'FIRMWARE_URL': file_server.url + '/x.rom', 'FLASH_COMMAND': ''})
    assert proc.returncode == 1
    assert 'FLASH_COMMAND is not set' in proc.stderr
    assert not record.exists()
