"""The replica's loopback server (replica/server.py): it serves the replica's
files and nothing outside its folder, with latency, scripted faults and a
deterministic fail rate; it stops cleanly, takes bursts of connections and
parses requests strictly.
"""

from __future__ import annotations

import http.client
import re
import socket
import time
import urllib.error
import urllib.request

import pytest

from sign_datasets.replica import ReplicaServer

# ------------------------------------------------------------------ server ----

@pytest.fixture
def served_dir(tmp_path):
    root = tmp_path / "bucket"
    (root / "img_mnist").mkdir(parents=True)
    (root / "img_mnist" / "29_B.jpg").write_bytes(b"\xff\xd8jpeg-ish" * 50)
    (root / "data.zip").write_bytes(bytes(range(256)) * 40)
    (root / "labels.json").write_bytes(b"[1, 2]")
    (root / "pic.png").write_bytes(b"\x89PNG....")
    (tmp_path / "secret.txt").write_text("do not serve")
    return root


def _get(url: str, method: str = "GET"):
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def _raw_status(server: ReplicaServer, target: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request("GET", target)
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def test_server_serves_replica_files(replica_dir):
    dest = replica_dir
    with ReplicaServer(dest) as server:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", server.base_url)
        status, headers, body = _get(server.base_url + "databasesLoadData.zip")
        assert status == 200 and body == (dest / "databasesLoadData.zip").read_bytes()
        assert headers["Content-Type"] == "application/zip"
        assert int(headers["Content-Length"]) == len(body)
        status, headers, body = _get(server.base_url + "img_mnist/29_B.jpg")
        assert status == 200 and headers["Content-Type"] == "image/jpeg"
        assert body == (dest / "img_mnist" / "29_B.jpg").read_bytes()
        assert server.count_for("img_mnist/29_B.jpg") == 1
        assert server.count_for("/databasesLoadData.zip") == 1


def test_server_basics(served_dir):
    with ReplicaServer(served_dir) as server:
        base = server.base_url
        for name, ctype in (("labels.json", "application/json"), ("pic.png", "image/png"),
                            ("img_mnist/29_B.jpg", "image/jpeg"), ("data.zip", "application/zip")):
            status, headers, body = _get(base + name)
            assert status == 200 and headers["Content-Type"] == ctype
            assert body == (served_dir / name).read_bytes()
        status, headers, body = _get(base + "data.zip", method="HEAD")
        assert status == 200 and body == b"" and int(headers["Content-Length"]) == 256 * 40
        assert _get(base + "missing.zip")[0] == 404
        assert _get(base + "img_mnist")[0] == 404  # folders are not objects
        assert _get(base + "data.zip?alt=media")[0] == 200
        assert server.request_count == 8
        assert server.count_for("data.zip") == 3
        assert server.count_for("missing.zip") == 1
        assert server.requests[-3:] == [
            ("GET", "missing.zip", 404), ("GET", "img_mnist", 404), ("GET", "data.zip", 200),
        ]
        assert server.requests[4] == ("HEAD", "data.zip", 200)


def test_server_refuses_path_traversal(served_dir):
    with ReplicaServer(served_dir) as server:
        for target in ("/../secret.txt", "/%2e%2e/secret.txt", "/img_mnist/../../secret.txt",
                       "/img_mnist/%2E%2E/%2E%2E/secret.txt", "/..%2fsecret.txt"):
            assert _raw_status(server, target) in (403, 404), target
        # A symlink out of the folder is refused too.
        (served_dir / "link.txt").symlink_to(served_dir.parent / "secret.txt")
        assert _raw_status(server, "/link.txt") in (403, 404)
        assert all(status in (403, 404) for _, _, status in server.requests)


def test_server_latency_is_measurable(served_dir):
    with ReplicaServer(served_dir, latency=0.25) as server:
        start = time.monotonic()
        assert _get(server.base_url + "labels.json")[0] == 200
        assert time.monotonic() - start >= 0.25


def test_server_scripted_faults(served_dir):
    with ReplicaServer(served_dir) as server:
        base = server.base_url
        server.set_fault("img_mnist/29_B.jpg", fail_times=2, status=503, retry_after=2)
        first = _get(base + "img_mnist/29_B.jpg")
        assert first[0] == 503 and first[1]["Retry-After"] == "2"
        assert _get(base + "img_mnist/29_B.jpg")[0] == 503
        third = _get(base + "img_mnist/29_B.jpg")
        assert third[0] == 200 and third[2] == (served_dir / "img_mnist" / "29_B.jpg").read_bytes()
        assert "Retry-After" not in third[1]
        assert server.count_for("img_mnist/29_B.jpg") == 3

        server.set_fault("labels.json", permanent_status=404)
        assert [_get(base + "labels.json")[0] for _ in range(3)] == [404, 404, 404]

        server.set_fault("pic.png", delay=0.3)
        start = time.monotonic()
        assert _get(base + "pic.png")[0] == 200
        assert time.monotonic() - start >= 0.3

        server.set_fault("data.zip", body_size=100_000)
        status, headers, body = _get(base + "data.zip")
        assert status == 200 and int(headers["Content-Length"]) == 100_000 and body == bytes(100_000)
        # Oversized answers work for names that do not exist too.
        server.set_fault("huge.zip", body_size=10)
        assert _get(base + "huge.zip")[2] == bytes(10)

        server.clear_faults()
        assert _get(base + "labels.json")[0] == 200
        assert _get(base + "data.zip")[2] == (served_dir / "data.zip").read_bytes()
        assert server.request_count == 11


def test_server_fail_rate_is_deterministic(served_dir):
    def statuses(seed: int) -> list[int]:
        with ReplicaServer(served_dir, fail_rate=0.5, seed=seed) as server:
            got = [_get(server.base_url + "labels.json")[0] for _ in range(24)]
            assert [s for _, _, s in server.requests] == got
            return got

    first = statuses(7)
    assert first == statuses(7)
    assert set(first) == {200, 503}
    assert first != statuses(8)


def test_server_stops_cleanly_with_open_connection(served_dir):
    server = ReplicaServer(served_dir).start()
    port = server.port
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", "/labels.json")
    assert conn.getresponse().read() == b"[1, 2]"  # connection stays open (HTTP/1.1)
    start = time.monotonic()
    server.stop()
    assert time.monotonic() - start < 3
    conn.close()
    with pytest.raises(OSError):
        http.client.HTTPConnection("127.0.0.1", port, timeout=2).request("GET", "/labels.json")
    server.stop()  # idempotent


def test_server_handles_bursts_of_parallel_connections(served_dir):
    from concurrent.futures import ThreadPoolExecutor

    with ReplicaServer(served_dir, latency=0.1) as server:
        url = server.base_url + "labels.json"
        start = time.monotonic()
        with ThreadPoolExecutor(32) as pool:
            statuses = list(pool.map(lambda _: _get(url)[0], range(64)))
        elapsed = time.monotonic() - start
        assert statuses == [200] * 64 and server.count_for("labels.json") == 64
        # Two waves of 0.1 s; a dropped connect would cost a 1 s SYN retry.
        assert elapsed < 0.9


def _exchange(server: ReplicaServer, raw: bytes) -> tuple[bytes, bool]:
    """(everything the server answered, whether it then closed the connection)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(raw)
        sock.settimeout(0.5)
        answer, closed = b"", False
        try:
            while chunk := sock.recv(65536):
                answer += chunk
            closed = True
        except socket.timeout:
            pass
    return answer, closed


def test_request_parsing_and_connection_handling(served_dir):
    with ReplicaServer(served_dir) as server:
        answer, closed = _exchange(server, b"GET /labels.json HTTP/1.1\r\nHost: x\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"[1, 2]") and not closed
        # Two requests on one connection, header names in any case.
        answer, closed = _exchange(server, b"GET /labels.json HTTP/1.1\r\nhOsT: x\r\n\r\n"
                                           b"GET /labels.json HTTP/1.1\r\nCONNECTION: Close\r\n\r\n")
        assert answer.count(b"HTTP/1.1 200") == 2 and closed
        answer, closed = _exchange(server, b"GET /labels.json HTTP/1.0\r\n\r\n")
        assert b" 200 " in answer.split(b"\r\n")[0] and closed
        answer, closed = _exchange(server, b"HEAD /labels.json HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        assert b"Content-Length: 6" in answer and not answer.endswith(b"[1, 2]") and not closed
        for bad in (b"GET /labels.json\r\n\r\n", b"GET /labels.json HTTP/2.0\r\n\r\n",
                    b"\x16\x03\x01 not http at all\r\n\r\n"):
            answer, closed = _exchange(server, bad)
            assert answer.split(b"\r\n")[0].split(b" ")[1] == b"400" and closed, bad
        many = b"GET /labels.json HTTP/1.1\r\n" + b"X-A: 1\r\n" * 101 + b"\r\n"
        answer, closed = _exchange(server, many)
        assert b" 431 " in answer.split(b"\r\n")[0] and closed
        long_line = b"GET /labels.json HTTP/1.1\r\nX-A: " + b"a" * 70_000 + b"\r\n\r\n"
        answer, closed = _exchange(server, long_line)
        assert b" 431 " in answer.split(b"\r\n")[0] and closed
        # Bad requests are not counted as requests for objects.
        assert [path for _, path, _ in server.requests] == ["labels.json"] * 5
