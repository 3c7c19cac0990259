# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Media for BMCs: exact bytes for Range requests (checked against the file and against nginx on the
same file), HEAD, ETag, conditional requests, and per-job URLs that stop working once complete.

Per-job media and uploaded task media depend on what is stored (the job, its media key, the medium's bytes in the
database): they run on both stores (``shared_receiver_on_both``).  Serving a file (ranges, framing, conditional requests,
TLS) is the same code on either store: once, on SQLite.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re

import pytest

from l3metal_lab.receiver import unique_serial

SIZE = 1_000_003  # odd on purpose: no range lines up with a power of two

# (Range header, expected status, expected (first, last) byte or None)
RANGES = [
    ('bytes=0-0', 206, (0, 0)),
    ('bytes=0-99', 206, (0, 99)),
    ('bytes=1000-1999', 206, (1000, 1999)),
    ('bytes=%d-' % (SIZE - 10), 206, (SIZE - 10, SIZE - 1)),
    ('bytes=0-', 206, (0, SIZE - 1)),
    ('bytes=%d-%d' % (SIZE - 5, SIZE + 500), 206, (SIZE - 5, SIZE - 1)),   # last byte past the end: clamped
    ('bytes=-1', 206, (SIZE - 1, SIZE - 1)),                               # suffix ranges
    ('bytes=-500', 206, (SIZE - 500, SIZE - 1)),
    ('bytes=-%d' % (SIZE + 1000), 206, (0, SIZE - 1)),                     # suffix longer than the file
    ('Bytes=10-20', 206, (10, 20)),
    ('bytes=010-020', 206, (10, 20)),
    ('bytes=%d-' % SIZE, 416, None),                                       # starts at the end
    ('bytes=%d-%d' % (SIZE + 1, SIZE + 9), 416, None),
    ('bytes=-0', 416, None),
    ('bytes=5-2', 416, None),
    ('bytes=abc', 416, None),
    ('bytes=-', 416, None),
    ('items=0-5', 200, None),                                              # unknown unit: ignored
    ('bytes=', 200, None),
]


@pytest.fixture(scope='module')
def media_file(tmp_path_factory):
    root = tmp_path_factory.mktemp('media')
    data = os.urandom(SIZE)
    (root / 'maintenance.iso').write_bytes(data)
    return root, data


def get(base_url, path, headers=None, method='GET'):
    host, port = base_url.split('//')[1].split(':')
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        body = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body
    finally:
        conn.close()


@pytest.fixture(scope='module')
def servers(media_file, tmp_path_factory):
    """The receiver and nginx, both serving the same directory."""
    from l3metal_lab.nginx import Nginx
    from l3metal_lab.receiver import Receiver

    root, _data = media_file
    receiver = Receiver(tmp_path_factory.mktemp('receiver'), extra_args=['--media-dir', str(root)]).start()
    nginx = Nginx(root, tmp_path_factory.mktemp('nginx')).start()
    yield receiver, nginx
    receiver.stop()
    nginx.stop()


@pytest.mark.parametrize('range_header, status, span', RANGES, ids=[r[0] for r in RANGES])
def test_range_is_exact_and_answers_like_nginx(servers, media_file, range_header, status, span):
    receiver, nginx = servers
    _root, data = media_file
    ours = get(receiver.url, '/media/maintenance.iso', {'Range': range_header})
    theirs = get(nginx.url, '/maintenance.iso', {'Range': range_header})
    assert ours[0] == theirs[0] == status
    if status == 206:
        first, last = span
        assert ours[2] == data[first:last + 1]
        assert ours[1]['content-range'] == theirs[1]['content-range'] == 'bytes %d-%d/%d' % (first, last, SIZE)
        assert int(ours[1]['content-length']) == last - first + 1
    elif status == 416:
        assert ours[1]['content-range'] == theirs[1]['content-range'] == 'bytes */%d' % SIZE
    else:
        assert ours[2] == theirs[2] == data


def test_whole_file_head_and_etag(servers, media_file):
    receiver, _nginx = servers
    _root, data = media_file
    status, headers, body = get(receiver.url, '/media/maintenance.iso')
    assert status == 200 and body == data
    assert headers['accept-ranges'] == 'bytes' and int(headers['content-length']) == SIZE
    assert headers['content-type'] == 'application/octet-stream'
    etag = headers['etag']
    assert re.match(r'^"[0-9a-f]+-[0-9a-f]+"$', etag)

    head_status, head_headers, head_body = get(receiver.url, '/media/maintenance.iso', method='HEAD')
    assert head_status == 200 and head_body == b''
    assert head_headers['content-length'] == str(SIZE) and head_headers['etag'] == etag
    head_status, head_headers, _body = get(receiver.url, '/media/maintenance.iso', {'Range': 'bytes=-10'}, method='HEAD')
    assert head_status == 206 and head_headers['content-range'] == 'bytes %d-%d/%d' % (SIZE - 10, SIZE - 1, SIZE)

    assert get(receiver.url, '/media/maintenance.iso', {'If-None-Match': etag})[0] == 304
    # If-Range with the current tag: the range; with an old one: the whole (changed) file
    assert get(receiver.url, '/media/maintenance.iso', {'Range': 'bytes=0-9', 'If-Range': etag})[2] == data[:10]
    status, _h, body = get(receiver.url, '/media/maintenance.iso', {'Range': 'bytes=0-9', 'If-Range': '"0-0"'})
    assert status == 200 and body == data
    status, _h, body = get(receiver.url, '/media/maintenance.iso', {'Range': 'bytes=0-9', 'If-Range': 'W/' + etag})
    assert status == 200 and body == data  # a weak tag never satisfies If-Range
    # several ranges: the whole file (allowed by RFC 9110; BMCs ask for one range at a time)
    status, _h, body = get(receiver.url, '/media/maintenance.iso', {'Range': 'bytes=0-1,5-6'})
    assert status == 200 and body == data


def test_slow_reader_and_hang_up_mid_body_on_keep_alive(servers, media_file):
    """A body larger than the socket buffers makes the sender wait for writability (media._send_file) many times:
    a client reading it slowly gets the exact bytes, twice on one keep-alive connection; one that hangs up in the
    middle costs the receiver nothing (the next request is answered).  About 0.5 s."""
    import socket
    import time

    receiver, _nginx = servers
    root, _data = media_file
    big = os.urandom(1 << 20) * 24
    (root / 'big.iso').write_bytes(big)
    host, port = receiver.url.split('//')[1].split(':')
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        for first, last in ((0, len(big) - 1), (3 << 20, (19 << 20) + 4)):
            conn.request('GET', '/media/big.iso', headers={'Range': 'bytes=%d-%d' % (first, last)})
            response = conn.getresponse()
            assert response.status == 206
            chunks = []
            while True:
                chunk = response.read(1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
                time.sleep(0.005)
            assert b''.join(chunks) == big[first:last + 1]
    finally:
        conn.close()
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(b'GET /media/big.iso HTTP/1.1\r\nHost: x\r\n\r\n')
        assert sock.recv(65536).startswith(b'HTTP/1.1 200')
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b'\x01\x00\x00\x00\x00\x00\x00\x00')  # close with RST
    status, _headers, body = get(receiver.url, '/media/big.iso', {'Range': 'bytes=-7'})
    assert status == 206 and body == big[-7:]


def read_response(sock, buffer, head_only=False):
    """One response from a raw socket: (status, headers, body, rest of the buffer); ``head_only`` for a HEAD's."""
    while b'\r\n\r\n' not in buffer:
        chunk = sock.recv(1 << 20)
        assert chunk, 'the connection closed before the headers: %r' % buffer[:200]
        buffer += chunk
    head, buffer = buffer.split(b'\r\n\r\n', 1)
    lines = head.decode('latin-1').split('\r\n')
    headers = {name.lower(): value.strip() for name, value in (line.split(':', 1) for line in lines[1:])}
    length = 0 if head_only else int(headers['content-length'])
    while len(buffer) < length:
        chunk = sock.recv(1 << 20)
        assert chunk, 'the connection closed %d bytes into a body of %d' % (len(buffer), length)
        buffer += chunk
    return int(lines[0].split()[1]), headers, buffer[:length], buffer[length:]


def test_pipelined_ranges_head_and_304_keep_their_framing(servers, media_file):
    """Headers leave with the body's first bytes (TCP_CORK around the headers and the first sendfile(2), media._send_file);
    pipelined on one connection, so that later answers find the socket still full of earlier ones (the path where the
    headers wait in the transport), every answer has its own status, headers and exactly its bytes, and a HEAD, a 304
    and a 416 have none."""
    import socket

    receiver, _nginx = servers
    root, _data = media_file
    big = os.urandom(1 << 20) * 6
    (root / 'pipelined.iso').write_bytes(big)
    host, port = receiver.url.split('//')[1].split(':')
    etag = get(receiver.url, '/media/pipelined.iso', method='HEAD')[1]['etag']
    asks = [('GET', 'bytes=0-4194303', 206, big[:4 << 20]),
            ('HEAD', 'bytes=100-199', 206, b''),
            ('GET', 'bytes=-1', 206, big[-1:]),
            ('GET', None, 304, b''),
            ('GET', 'bytes=%d-' % len(big), 416, b''),
            ('GET', 'bytes=1048575-3145728', 206, big[1048575:3145729]),
            ('GET', None, 200, big)]
    requests = b''
    for method, byte_range, status, _body in asks:
        extra = ('Range: %s\r\n' % byte_range if byte_range else '') + ('If-None-Match: %s\r\n' % etag if status == 304 else '')
        requests += ('%s /media/pipelined.iso HTTP/1.1\r\nHost: x\r\n%s\r\n' % (method, extra)).encode()
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(requests)
        buffer = b''
        for method, byte_range, status, body in asks:
            got_status, headers, got_body, buffer = read_response(sock, buffer, head_only=method == 'HEAD' or status in (304, 416))
            assert (got_status, got_body == body) == (status, True), (method, byte_range)
            if status == 206:
                assert headers['content-range'].startswith('bytes ') and headers['etag'] == etag
            if method == 'HEAD':
                assert headers['content-length'] == '100'
        assert buffer == b''
        sock.settimeout(0.2)
        try:
            assert sock.recv(1) == b'', 'bytes after the last answer'
        except TimeoutError:
            pass  # nothing more: the connection stays open for the next request


def test_compressed_sibling_is_never_sent_instead(servers, media_file):
    receiver, _nginx = servers
    root, data = media_file
    (root / 'maintenance.iso.gz').write_bytes(b'not the iso')
    try:
        status, headers, body = get(receiver.url, '/media/maintenance.iso', {'Accept-Encoding': 'gzip, br'})
        assert status == 200 and body == data and 'content-encoding' not in headers
    finally:
        (root / 'maintenance.iso.gz').unlink()


@pytest.mark.parametrize('path', ['/media/', '/media/nothing.iso', '/media/../receiver.log', '/media/%2e%2e/receiver.log',
                                  '/media/.hidden', '/media/sub', '/media/jobs/x/y/z'])
def test_no_file_outside_the_media_directory(servers, media_file, path):
    receiver = servers[0]
    root = media_file[0]
    (root / '.hidden').write_bytes(b'secret')
    (root / 'sub').mkdir(exist_ok=True)
    assert get(receiver.url, path)[0] == 404


def test_per_job_media_stop_working_when_the_job_is_complete(shared_receiver_on_both):
    receiver = shared_receiver_on_both
    job = receiver.create_job(unique_serial())
    job_dir = receiver.media_dir / 'jobs' / job['job_id']
    assert str(job_dir) == job['media_dir'] and job_dir.is_dir()
    task = os.urandom(4096)
    (job_dir / 'task.iso').write_bytes(task)
    url = job['media_url'] + 'task.iso'
    path = url[len(receiver.url):]
    assert get(receiver.url, path)[2] == task
    assert get(receiver.url, path, {'Range': 'bytes=-96'})[2] == task[-96:]
    # only with the job's media key
    key = path.split('/')[4]
    assert get(receiver.url, path.replace(key, 'x' * len(key)))[0] == 404
    assert get(receiver.url, '/media/jobs/%s/task.iso' % job['job_id'])[0] == 404
    assert get(receiver.url, path.replace('task.iso', 'other.iso'))[0] == 404

    receiver.set_status(job['job_id'], 'complete')
    assert get(receiver.url, path)[0] == 410
    assert not job_dir.exists()
    assert receiver.get_job(job['job_id'])['media_url'] is None


def test_an_uploaded_task_medium_is_served_from_the_store_and_goes_with_the_job(shared_receiver_on_both):
    """PUT /api/v1/jobs/{id}/media/{name}: kept in the database, served as a file (Range, ETag), again after a restart
    from the database alone, never replaced by other content, refused with a name that is no file name, gone once complete."""
    receiver = shared_receiver_on_both
    job = receiver.create_job(unique_serial())
    upload = '/api/v1/jobs/%s/media/task.iso' % job['job_id']
    content = os.urandom(70_001)
    put = receiver.request('PUT', upload, raw=content, content_type='application/octet-stream')
    assert put.status == 201, put.body
    assert (put.json['sha256'], put.json['size'], put.json['changed']) == (hashlib.sha256(content).hexdigest(), len(content), True)
    again = receiver.request('PUT', upload, raw=content, content_type='application/octet-stream')
    assert again.status == 200 and again.json['changed'] is False
    before = receiver.snapshot()
    other = receiver.request('PUT', upload, raw=b'other content', content_type='application/octet-stream')
    assert other.status == 409 and other.json['code'] == 'medium_exists', other.body
    named = receiver.request('PUT', '/api/v1/jobs/%s/media/task%%00.iso' % job['job_id'], raw=b'x', content_type='application/octet-stream')
    assert named.status == 400 and named.json['errors'][0]['path'] == 'name', named.body
    assert receiver.snapshot() == before
    path = put.json['url'][len(receiver.url):]
    status, headers, body = get(receiver.url, path)
    assert (status, body) == (200, content)
    assert get(receiver.url, path, {'Range': 'bytes=100-199'})[2] == content[100:200]
    receiver.restart()
    (receiver.media_dir / 'jobs' / job['job_id'] / 'task.iso').unlink()  # served from the database again, not from the file
    status, after, body = get(receiver.url, path)
    assert (status, body, after['etag']) == (200, content, headers['etag'])  # the same ETag: the file's mtime is the upload time
    listed = receiver.expect(200, 'GET', '/api/v1/jobs/%s/media' % job['job_id'])['media']
    assert [(medium['name'], medium['size']) for medium in listed] == [('task.iso', len(content))]
    receiver.set_status(job['job_id'], 'complete')
    assert get(receiver.url, path)[0] == 410
    assert receiver.expect(200, 'GET', '/api/v1/jobs/%s/media' % job['job_id'])['media'] == []


def test_conditional_requests(servers, media_file):
    receiver = servers[0]
    data = media_file[1]
    path = '/media/maintenance.iso'
    _status, headers, _body = get(receiver.url, path, method='HEAD')
    etag, modified = headers['etag'], headers['last-modified']
    old = 'Mon, 01 Jan 2001 00:00:00 GMT'
    assert get(receiver.url, path, {'If-Match': '"other"'})[0] == 412
    assert get(receiver.url, path, {'If-Match': etag})[2] == data
    assert get(receiver.url, path, {'If-Unmodified-Since': old})[0] == 412
    assert get(receiver.url, path, {'If-Modified-Since': modified})[0] == 304
    assert get(receiver.url, path, {'If-Modified-Since': old})[2] == data
    assert get(receiver.url, path, {'If-None-Match': '"other", ' + etag})[0] == 304
    # If-Range with the Last-Modified date: the range; with another date: the whole file
    assert get(receiver.url, path, {'Range': 'bytes=5-9', 'If-Range': modified})[2] == data[5:10]
    assert get(receiver.url, path, {'Range': 'bytes=5-9', 'If-Range': old})[2] == data


def test_media_over_tls(receiver_factory, tls_files):
    import ssl
    import urllib.request

    receiver = receiver_factory(tls=tls_files)
    data = os.urandom(3 * 1024 * 1024 + 17)  # over TLS the file is read in chunks instead of sendfile(2)
    (receiver.media_dir / 'maintenance.iso').write_bytes(data)
    context = ssl.create_default_context(cafile=tls_files[2])
    request = urllib.request.Request(receiver.url + '/media/maintenance.iso', headers={'Range': 'bytes=1000000-'})
    with urllib.request.urlopen(request, context=context, timeout=30) as answer:
        assert answer.status == 206 and answer.read() == data[1000000:]
    with urllib.request.urlopen(receiver.url + '/media/maintenance.iso', context=context, timeout=30) as answer:
        assert answer.read() == data
