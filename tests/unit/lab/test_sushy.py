# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The emulator's access log as the lab reads it: werkzeug's lines parsed, read incrementally (only what was
appended since the last read; a line still being written waits), no emulator started (lines as werkzeug writes them)."""

from __future__ import annotations

from l3metal_lab.sushy import ACCESS_LINE, ANSI_COLOUR, AccessRecord, SushyEmulator, parse_access_log

SYSTEM = '/redfish/v1/Systems/11111111-1111-1111-1111-000000000001'


def line(method: str, path: str, status: int, colour: bool = False) -> str:
    """One access line as werkzeug writes it (it colours non-2xx answers, also into a file)."""
    request = '"%s %s HTTP/1.1" %d -' % (method, path, status)
    if colour:
        request = '\x1b[33m%s\x1b[0m' % request
    return '127.0.0.1 - - [04/Dec/2026 19:00:00] %s\n' % request


def emulator(tmp_path) -> SushyEmulator:
    bmc = SushyEmulator(tmp_path / 'bmc', systems=1)
    bmc.workdir.mkdir(parents=True)
    return bmc


def test_access_lines_are_parsed_with_their_colours_and_other_lines_ignored():
    text = (' * Running on http://127.0.0.1:8000\n' + line('GET', '/redfish/v1/', 200)
            + line('POST', SYSTEM + '/Actions/ComputerSystem.Reset', 400, colour=True) + 'Traceback (most recent call last):\n')
    assert parse_access_log(text) == [AccessRecord('GET', '/redfish/v1/', 200), AccessRecord('POST', SYSTEM + '/Actions/ComputerSystem.Reset', 400)]
    # the public pieces the parser is made of, for callers that read other logs
    assert ANSI_COLOUR.sub('', '\x1b[31mred\x1b[0m') == 'red'
    found = ACCESS_LINE.search(line('PATCH', SYSTEM, 204))
    assert found is not None and (found['method'], found['path'], found['status']) == ('PATCH', SYSTEM, '204')


def test_no_log_yet_is_no_request(tmp_path):
    bmc = emulator(tmp_path)
    assert bmc.requests() == [] and bmc.mark() == 0 and bmc.requests_since(0) == []


def test_the_log_is_read_incrementally_a_parsed_part_is_not_read_again(tmp_path):
    bmc = emulator(tmp_path)
    first = line('GET', '/redfish/v1/', 200)
    bmc.log_path.write_text(first)
    assert bmc.requests() == [AccessRecord('GET', '/redfish/v1/', 200)]
    # overwrite what was read with a different request of the same length: a reader that re-reads the whole log would
    # now see a DELETE; an incremental one has moved past those bytes and parses only what comes after them
    replaced = first.replace('"GET /redfish/v1/', '"PUT /redfish/v1/')
    assert len(replaced) == len(first)
    with open(bmc.log_path, 'r+', encoding='utf-8') as handle:
        handle.write(replaced)
        handle.write(line('POST', SYSTEM + '/VirtualMedia/Cd/Actions/VirtualMedia.InsertMedia', 204))
    assert [r.method for r in bmc.requests()] == ['GET', 'POST']
    mark = bmc.mark()
    assert mark == 2 and bmc.requests_since(mark) == []


def test_a_line_still_being_written_waits_for_its_end(tmp_path):
    bmc = emulator(tmp_path)
    whole = line('POST', SYSTEM + '/Actions/ComputerSystem.Reset', 204)
    with open(bmc.log_path, 'w', encoding='utf-8') as handle:
        handle.write(line('GET', SYSTEM, 200) + whole[:30])
    assert bmc.requests() == [AccessRecord('GET', SYSTEM, 200)]
    with open(bmc.log_path, 'a', encoding='utf-8') as handle:
        handle.write(whole[30:])
    assert bmc.requests_since(1) == [AccessRecord('POST', SYSTEM + '/Actions/ComputerSystem.Reset', 204)]


def test_a_log_that_got_shorter_is_read_again_from_its_start(tmp_path):
    bmc = emulator(tmp_path)
    bmc.log_path.write_text(line('GET', SYSTEM, 200) * 3)
    assert len(bmc.requests()) == 3
    bmc.log_path.write_text(line('HEAD', SYSTEM, 200))
    assert bmc.requests() == [AccessRecord('HEAD', SYSTEM, 200)]
