# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The lab file server answers Range requests like a real web server (other suites rely on it)."""

from __future__ import annotations

import os
import urllib.error
import urllib.request

import pytest

from l3metal_lab.httpserver import parse_range


def fetch(url, headers=None, method='GET'):
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


@pytest.fixture
def blob(file_server):
    data = os.urandom(100_000)
    return data, file_server.add_file('dir/blob.bin', data)


@pytest.mark.parametrize('header, start, end', [('bytes=0-0', 0, 0), ('bytes=10-19', 10, 19), ('bytes=99990-', 99990, 99999),
                                                ('bytes=-5', 99995, 99999), ('bytes=99000-200000', 99000, 99999),
                                                ('bytes=-200000', 0, 99999)])
def test_ranges_return_exact_bytes(blob, header, start, end):
    data, url = blob
    status, headers, body = fetch(url, {'Range': header})
    assert status == 206
    assert body == data[start:end + 1]
    assert headers['Content-Range'] == 'bytes %d-%d/%d' % (start, end, len(data))
    assert int(headers['Content-Length']) == end - start + 1


def test_whole_file_head_etag_and_if_range(blob, file_server):
    data, url = blob
    status, headers, body = fetch(url)
    assert (status, body, headers['Accept-Ranges']) == (200, data, 'bytes')
    status, head_headers, body = fetch(url, method='HEAD')
    assert (status, body, head_headers['Content-Length']) == (200, b'', str(len(data)))
    status, _h, body = fetch(url, {'Range': 'bytes=0-9', 'If-Range': headers['ETag']})
    assert (status, body) == (206, data[:10])
    status, _h, body = fetch(url, {'Range': 'bytes=0-9', 'If-Range': '"stale"'})
    assert (status, body) == (200, data)
    assert [r.status for r in file_server.requests] == [200, 200, 206, 200]


@pytest.mark.parametrize('header', ['bytes=100000-', 'bytes=200000-300000', 'bytes=-0'])
def test_unsatisfiable_ranges_get_416(blob, header):
    _data, url = blob
    status, headers, _body = fetch(url, {'Range': header})
    assert status == 416
    assert headers['Content-Range'] == 'bytes */100000'


def test_missing_files_and_escapes_get_404(file_server, tmp_path):
    (tmp_path / 'secret').write_text('no')
    assert fetch(file_server.url_for('nope.iso'))[0] == 404
    assert fetch(file_server.url + '/../secret')[0] == 404


def test_parse_range_rejects_what_it_does_not_support():
    for header in ('bytes=1-2,5-6', 'items=1-2', 'bytes=-', 'bytes=a-b'):
        with pytest.raises(ValueError):
            parse_range(header, 10)
