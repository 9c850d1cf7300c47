"""The waitress server's graceful stop, and ``python -m tracker_service`` end to end."""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import numpy as np
import pytest
from flask import Flask

from tracker_service.server import Server
from tracker_tools.triton_server import free_ports


def slow_app(started: threading.Event) -> Flask:
    app = Flask(__name__)

    @app.get("/slow")
    def slow():
        started.set()
        time.sleep(1.0)
        return {"done": True}

    return app


def test_stop_finishes_requests_in_flight_and_refuses_new_ones():
    started = threading.Event()
    server = Server(slow_app(started), host="127.0.0.1", port=0, threads=2,
                    max_body_bytes=1000, grace_s=10)
    loop = threading.Thread(target=server.serve)
    loop.start()
    url = f"http://127.0.0.1:{server.port}/slow"
    answers = []
    client = threading.Thread(
        target=lambda: answers.append(json.load(urllib.request.urlopen(url, timeout=10)))
    )
    client.start()
    assert started.wait(5)
    server.stop()
    client.join(10)
    loop.join(10)
    assert answers == [{"done": True}] and not loop.is_alive()
    with pytest.raises(OSError):
        urllib.request.urlopen(url, timeout=2)


@pytest.mark.parametrize(
    ("head", "body", "status", "words"),
    [
        ("Content-Length: 5000", b"x" * 5000, 413, "Too Large"),  # over twice the limit
        ("Content-Length: lots", b"", 400, "Bad Request"),  # malformed HTTP
    ],
)
def test_errors_of_waitress_itself_are_json(head, body, status, words):
    server = Server(slow_app(threading.Event()), host="127.0.0.1", port=0, threads=1,
                    max_body_bytes=1000, grace_s=1)
    loop = threading.Thread(target=server.serve)
    loop.start()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
            s.sendall(f"POST /slow HTTP/1.1\r\nHost: x\r\n{head}\r\n\r\n".encode() + body)
            answer = b""
            while chunk := s.recv(65536):
                answer += chunk
    finally:
        server.stop()
        loop.join(10)
    headers, _, content = answer.partition(b"\r\n\r\n")
    assert headers.startswith(f"HTTP/1.1 {status}".encode())
    assert b"Content-Type: application/json" in headers
    assert words in json.loads(content)["error"]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_module_serves_until_a_signal(tmp_path, repo_root, signum):
    faces = tmp_path / "faces.npy"
    np.save(faces, np.zeros((13776, 3), np.int32))
    port, triton_port = free_ports(2)
    env = dict(
        os.environ,
        TRACKER_HOST="127.0.0.1",
        TRACKER_PORT=str(port),
        TRACKER_TRITON_URL=f"127.0.0.1:{triton_port}",
        TRACKER_SMPL_FACES=str(faces),
        TRACKER_THREADS="2",
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "tracker_service"], cwd=repo_root, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
                    health = json.load(r)
                break
            except OSError:
                assert process.poll() is None, process.stdout.read()
                assert time.monotonic() < deadline, "the service did not start"
                time.sleep(0.2)
        assert health["status"] == "warming_up"
        process.send_signal(signum)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    assert signal.Signals(signum).name in output and "Stopped" in output
