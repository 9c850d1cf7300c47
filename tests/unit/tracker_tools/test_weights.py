"""The weights fetcher against a real HTTP server on 127.0.0.1 (loopback only, no internet).

The server serves small files and tar archives and can ignore ``Range``, cut a body short or
answer an error, so that resuming, mirror fall-back, archive members and every check run over
real HTTP. The official source list itself is checked statically.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import pickle
import tarfile
import threading
import urllib.parse
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from tracker_tools.hmr2.standin_smpl import make_standin, write_npz
from tracker_tools.weights import (
    ARCHIVE_CHECKPOINT,
    ARCHIVE_NAME,
    ARCHIVE_REGRESSOR,
    CHECKPOINT,
    CHECKPOINT_SIZE,
    EXTRA_REGRESSOR,
    TRITON_ORT_MAX_IR,
    Artifact,
    FetchError,
    Source,
    check_onnx_for_triton,
    download,
    extract_member,
    fetch,
    find_smpl,
    verify,
)

PAYLOAD = bytes(range(256)) * 4099  # ~1 MB, not a multiple of the chunk size
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


@dataclass
class Route:
    body: bytes
    status: int = 200
    ranges: bool = True
    cut_at: int | None = None  # announce the full length, send only this many bytes


class _Handler(http.server.BaseHTTPRequestHandler):
    server: LoopbackServer

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        path = urllib.parse.unquote(self.path)
        self.server.requests.append((path, self.headers.get("Range")))
        route = self.server.routes.get(path)
        if route is None or route.status != 200:
            self.send_error(404 if route is None else route.status)
            return
        body, start = route.body, 0
        wanted = self.headers.get("Range")
        if wanted and route.ranges:
            start = int(wanted.removeprefix("bytes=").split("-")[0])
            if start >= len(body):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        sent = body[start:] if route.cut_at is None else body[start:route.cut_at]
        self.wfile.write(sent)

    def log_message(self, *args: object) -> None:
        pass


class LoopbackServer(http.server.ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, str | None]] = []

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{urllib.parse.quote(path)}"


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    srv = LoopbackServer()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _artifact(*sources: Source, size: int | None = None, sha256: str | None = None) -> Artifact:
    return Artifact(filename="payload.bin", sources=sources, size=size, sha256=sha256)


def _tar_gz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


# ------------------------------------------------------------------------------ download


def test_download_writes_the_file(server, tmp_path):
    server.routes["/a.bin"] = Route(PAYLOAD)
    out = download(server.url("/a.bin"), tmp_path / "a.bin")
    assert out.read_bytes() == PAYLOAD
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]  # no partial left


def test_an_interrupted_download_resumes_where_it_stopped(server, tmp_path):
    server.routes["/a.bin"] = Route(PAYLOAD, cut_at=300_000)
    with pytest.raises(FetchError, match="run again to resume"):
        download(server.url("/a.bin"), tmp_path / "a.bin")
    assert not (tmp_path / "a.bin").exists()
    server.routes["/a.bin"] = Route(PAYLOAD)
    download(server.url("/a.bin"), tmp_path / "a.bin")
    assert (tmp_path / "a.bin").read_bytes() == PAYLOAD
    assert server.requests[-1] == ("/a.bin", "bytes=300000-")


def test_a_server_without_ranges_restarts_from_zero(server, tmp_path):
    server.routes["/a.bin"] = Route(PAYLOAD, cut_at=1000)
    with pytest.raises(FetchError):
        download(server.url("/a.bin"), tmp_path / "a.bin")
    server.routes["/a.bin"] = Route(PAYLOAD, ranges=False)
    download(server.url("/a.bin"), tmp_path / "a.bin")
    assert (tmp_path / "a.bin").read_bytes() == PAYLOAD


def test_a_complete_partial_file_is_refetched(server, tmp_path):
    server.routes["/a.bin"] = Route(PAYLOAD)
    url = server.url("/a.bin")
    download(url, tmp_path / "a.bin")
    partial = next(iter(tmp_path.glob("*.partial")), None)
    assert partial is None
    # A stale partial as long as the file: the server answers 416, the download restarts.
    from tracker_tools.weights import _partial_path

    _partial_path(tmp_path / "b.bin", url).write_bytes(PAYLOAD)
    download(url, tmp_path / "b.bin")
    assert (tmp_path / "b.bin").read_bytes() == PAYLOAD


@pytest.mark.parametrize(("status", "message"), [(404, "HTTP 404"), (500, "HTTP 500")])
def test_http_errors_name_the_url(server, tmp_path, status, message):
    server.routes["/gone"] = Route(b"", status=status)
    with pytest.raises(FetchError, match=message) as error:
        download(server.url("/gone"), tmp_path / "x")
    assert server.url("/gone") in str(error.value)


def test_a_closed_port_is_a_fetch_error(tmp_path):
    with pytest.raises(FetchError, match="127.0.0.1:9"):
        download("http://127.0.0.1:9/x", tmp_path / "x", timeout_s=5)


# -------------------------------------------------------------------------------- checks


def test_verify_checks_size_and_sha256(tmp_path):
    path = tmp_path / "payload.bin"
    path.write_bytes(PAYLOAD)
    assert verify(path, _artifact(size=len(PAYLOAD), sha256=PAYLOAD_SHA.upper())) == PAYLOAD_SHA
    with pytest.raises(FetchError, match=f"expected {len(PAYLOAD) + 1} bytes, got {len(PAYLOAD)}"):
        verify(path, _artifact(size=len(PAYLOAD) + 1))
    with pytest.raises(FetchError, match=f"expected SHA-256 {'0' * 64}, got {PAYLOAD_SHA}"):
        verify(path, _artifact(sha256="0" * 64))


def test_the_checkpoint_check_wants_a_zip(tmp_path):
    html = tmp_path / "error.html"
    html.write_text("<html>Not found</html>")
    with pytest.raises(FetchError, match="not a PyTorch"):
        CHECKPOINT.check(html)
    archive = tmp_path / "ok.ckpt"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("archive/data.pkl", b"x")
    CHECKPOINT.check(archive)


def test_the_regressor_check_loads_it(tmp_path):
    good, bad = tmp_path / "good.pkl", tmp_path / "bad.pkl"
    good.write_bytes(pickle.dumps(np.zeros((19, 6890), np.float32)))
    bad.write_bytes(pickle.dumps(np.zeros((24, 6890), np.float32)))
    EXTRA_REGRESSOR.check(good)
    with pytest.raises(FetchError, match=r"\(19, 6890\)"):
        EXTRA_REGRESSOR.check(bad)


# --------------------------------------------------------------------------------- fetch


def test_mirrors_are_tried_in_order_until_one_is_right(server, tmp_path, caplog):
    server.routes["/wrong.bin"] = Route(b"not it")
    server.routes["/right.bin"] = Route(PAYLOAD)
    sources = [Source(url=server.url(p)) for p in ("/missing.bin", "/wrong.bin", "/right.bin")]
    fetched = fetch(_artifact(*sources, sha256=PAYLOAD_SHA), tmp_path)
    assert fetched.path.read_bytes() == PAYLOAD
    assert fetched.sha256 == PAYLOAD_SHA
    assert fetched.origin == server.url("/right.bin")
    assert [path for path, _ in server.requests] == ["/missing.bin", "/wrong.bin", "/right.bin"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["payload.bin"]
    assert "HTTP 404" in caplog.text and "expected SHA-256" in caplog.text


def test_every_failure_is_listed_with_what_to_do(server, tmp_path):
    server.routes["/wrong.bin"] = Route(b"not it")
    sources = [Source(url=server.url("/missing.bin")), Source(url=server.url("/wrong.bin"))]
    with pytest.raises(FetchError) as error:
        fetch(_artifact(*sources, size=len(PAYLOAD)), tmp_path)
    message = str(error.value)
    assert server.url("/missing.bin") in message and "HTTP 404" in message
    assert server.url("/wrong.bin") in message and f"expected {len(PAYLOAD)} bytes" in message
    assert ARCHIVE_NAME in message and str(tmp_path) in message and "run this again" in message


def test_files_already_in_the_weights_folder_need_no_network(tmp_path):
    (tmp_path / "payload.bin").write_bytes(PAYLOAD)
    dead = _artifact(Source(url="http://127.0.0.1:9/payload.bin"), sha256=PAYLOAD_SHA)
    assert fetch(dead, tmp_path).origin == "already in the weights folder"
    (tmp_path / "payload.bin").write_bytes(b"changed")
    with pytest.raises(FetchError, match="remove it and run again"):
        fetch(dead, tmp_path)


def test_members_come_from_one_archive_download(server, tmp_path):
    regressor = pickle.dumps(np.ones((19, 6890), np.float32))
    server.routes["/mirror/" + ARCHIVE_NAME] = Route(
        _tar_gz({"./" + ARCHIVE_CHECKPOINT: PAYLOAD, ARCHIVE_REGRESSOR: regressor})
    )
    url = server.url("/mirror/" + ARCHIVE_NAME)
    first = _artifact(Source(url=url, member=ARCHIVE_CHECKPOINT), sha256=PAYLOAD_SHA)
    second = Artifact(
        filename="SMPL_to_J19.pkl",
        sources=(Source(url=url, member=ARCHIVE_REGRESSOR),),
        check=EXTRA_REGRESSOR.check,
    )
    assert fetch(first, tmp_path).path.read_bytes() == PAYLOAD
    assert fetch(second, tmp_path).path.read_bytes() == regressor
    assert len(server.requests) == 1  # the archive was downloaded once
    assert (tmp_path / ARCHIVE_NAME).is_file()


def test_an_archive_put_there_by_hand_is_used(server, tmp_path):
    (tmp_path / ARCHIVE_NAME).write_bytes(_tar_gz({"hmr2_data/" + ARCHIVE_CHECKPOINT: PAYLOAD}))
    source = Source(url=server.url("/elsewhere/" + ARCHIVE_NAME), member=ARCHIVE_CHECKPOINT)
    assert fetch(_artifact(source, sha256=PAYLOAD_SHA), tmp_path).path.read_bytes() == PAYLOAD
    assert server.requests == []


def test_a_wrong_archive_is_set_aside_and_the_next_mirror_used(server, tmp_path):
    server.routes["/a/" + ARCHIVE_NAME] = Route(_tar_gz({ARCHIVE_CHECKPOINT: b"other bytes"}))
    server.routes["/b/" + ARCHIVE_NAME] = Route(_tar_gz({ARCHIVE_CHECKPOINT: PAYLOAD}))
    sources = [Source(url=server.url(f"/{m}/{ARCHIVE_NAME}"), member=ARCHIVE_CHECKPOINT)
               for m in ("a", "b")]
    fetched = fetch(_artifact(*sources, sha256=PAYLOAD_SHA), tmp_path)
    assert fetched.path.read_bytes() == PAYLOAD
    assert (tmp_path / f"{ARCHIVE_NAME}.bad").is_file()


def test_a_dead_mirror_is_not_tried_twice(server, tmp_path):
    failed: set[str] = set()
    dead = Source(url=server.url("/dead/" + ARCHIVE_NAME), member=ARCHIVE_CHECKPOINT)
    for _ in range(2):
        with pytest.raises(FetchError):
            fetch(_artifact(dead), tmp_path, failed=failed)
    assert len(server.requests) == 1


def test_extract_member_rejects_a_non_archive(tmp_path):
    (tmp_path / "x.tar.gz").write_bytes(b"<html>rate limited</html>")
    with pytest.raises(FetchError, match="not a readable tar archive"):
        extract_member(tmp_path / "x.tar.gz", "a", tmp_path / "a")
    (tmp_path / "y.tar.gz").write_bytes(_tar_gz({"other": b""}))
    with pytest.raises(FetchError, match="has no file a"):
        extract_member(tmp_path / "y.tar.gz", "a", tmp_path / "a")


# ------------------------------------------------------------------ the official sources


def test_the_official_sources():
    for artifact in (CHECKPOINT, EXTRA_REGRESSOR):
        urls = [s.url for s in artifact.sources]
        assert all(u.startswith("https://") for u in urls)
        assert len(set(zip(urls, [s.member for s in artifact.sources], strict=True))) == len(urls)
        assert "people.eecs.berkeley.edu" in urls[-1]  # dead (4D-Humans #180): last
        assert any("huggingface.co" in u for u in urls)
    assert CHECKPOINT.size == CHECKPOINT_SIZE == 2_709_521_501
    assert CHECKPOINT.filename == Path(ARCHIVE_CHECKPOINT).name
    direct = [s.url for s in CHECKPOINT.sources if s.member is None]
    assert direct and all(u.endswith("epoch%3D35-step%3D1000000.ckpt") for u in direct)
    assert {s.member for s in EXTRA_REGRESSOR.sources} == {ARCHIVE_REGRESSOR, None}


# ------------------------------------------------------------------------ SMPL, ONNX, main


def _save_standin(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_npz(make_standin(), path)


def test_find_smpl_searches_the_weights_folder(tmp_path):
    _save_standin(tmp_path / "SMPL_python_v.1.1.0" / "smpl" / "models" / "SMPL_NEUTRAL.npz")
    (tmp_path / "huggingface" / "SMPL_NEUTRAL.pkl").parent.mkdir()
    (tmp_path / "huggingface" / "SMPL_NEUTRAL.pkl").write_bytes(b"not searched here")
    assert find_smpl(tmp_path).name == "SMPL_NEUTRAL.npz"


def test_find_smpl_says_where_to_register(tmp_path):
    with pytest.raises(FetchError, match=r"smpl\.is\.tue\.mpg\.de"):
        find_smpl(tmp_path)
    (tmp_path / "SMPL_NEUTRAL.pkl").write_bytes(pickle.dumps({"v_template": np.zeros(3)}))
    with pytest.raises(FetchError, match="not a usable SMPL body model"):
        find_smpl(tmp_path)


def _onnx_model(path: Path, *, ir_version: int, opset: int) -> Path:
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = ir_version
    onnx.save(model, path)
    return path


def test_onnx_graphs_must_suit_the_triton_image(tmp_path):
    assert check_onnx_for_triton(_onnx_model(tmp_path / "ok.onnx", ir_version=8, opset=17)) == (
        8, 17
    )
    too_new = _onnx_model(tmp_path / "new.onnx", ir_version=TRITON_ORT_MAX_IR + 1, opset=17)
    with pytest.raises(FetchError, match="reads at most IR 10, opset 21"):
        check_onnx_for_triton(too_new)
    with pytest.raises(FetchError, match="opset 22"):
        check_onnx_for_triton(_onnx_model(tmp_path / "o.onnx", ir_version=8, opset=22))
