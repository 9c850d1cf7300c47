"""The official weights: found (SMPL), fetched from mirrors (HMR2) and verified.

The steps of ``python -m scripts.fetch_weights`` (the ``exporter`` image) are in
:mod:`tracker_tools.production`; this module does their first two and the graph check:

1. **SMPL**, from the weights folder. The body model cannot be downloaded for you: register at
   https://smpl.is.tue.mpg.de (or https://smplify.is.tue.mpg.de, whose download has the
   neutral model), accept the licence, and put ``basicModel_neutral_lbs_10_207_0_v1.0.0.pkl``
   (or ``SMPL_NEUTRAL.pkl``) anywhere under the weights folder. It is checked first, before
   any long download.
2. **HMR2** (4D-Humans' ``hmr2_data.tar.gz``: the checkpoint
   ``epoch=35-step=1000000.ckpt`` and the extra joint regressor ``SMPL_to_J19.pkl``). A file
   already in the weights folder is used as it is; otherwise the mirrors of
   :data:`CHECKPOINT` and :data:`EXTRA_REGRESSOR` are tried in order. The historical link
   (people.eecs.berkeley.edu) is dead (4D-Humans issue #180) and is tried last. Downloads
   resume after an interruption; every file is checked (size, SHA-256 where known, content).
3. **Check**, after the export (:func:`tracker_tools.production.export_production`), that
   every graph is one the ONNX Runtime of the Triton image reads (IR version and opset,
   :data:`TRITON_ORT_MAX_IR` and :data:`TRITON_ORT_MAX_OPSET`), and write
   ``<model>/1/export.json`` with where each model came from (``scripts/start.sh`` reads it
   to tell production models from the offline stand-ins of ``make models``).

When every mirror fails, the error lists each URL with its failure and says what to do:
get ``hmr2_data.tar.gz`` (or the two files) another way, put it in the weights folder,
run again.
"""

from __future__ import annotations

import datetime
import hashlib
import http.client
import json
import logging
import os
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

#: The archive 4D-Humans' demo downloads, holding the checkpoint and its data files.
ARCHIVE_NAME = "hmr2_data.tar.gz"
#: The checkpoint inside the archive (extracted into ``~/.cache/4DHumans`` by 4D-Humans).
ARCHIVE_CHECKPOINT = "logs/train/multiruns/hmr2/0/checkpoints/epoch=35-step=1000000.ckpt"
#: HMR2's 19 extra joints regressor inside the archive.
ARCHIVE_REGRESSOR = "data/SMPL_to_J19.pkl"
#: Size of the official checkpoint in bytes: a third-party download script
#: (lamianlbe/4D-Humans mirror) and the archive's size (2,710,589,440 bytes, the checkpoint
#: plus the ~1 MB regressor and tar headers) agree on it.
CHECKPOINT_SIZE = 2_709_521_501

_HISTORICAL = "https://people.eecs.berkeley.edu/~jathushan/projects/4dhumans/" + ARCHIVE_NAME
_UTEXAS = "https://www.cs.utexas.edu/~pavlakos/4dhumans/" + ARCHIVE_NAME
_HF_CAMENDURU = "https://huggingface.co/camenduru/4D-Humans/resolve"
_HF_LAMIANLBE = "https://huggingface.co/lamianlbe/4D-Humans/resolve/main"

#: ONNX IR version and default-domain opset the ORT of Triton 24.10 (ORT 1.19.2) reads.
TRITON_ORT_MAX_IR = 10
TRITON_ORT_MAX_OPSET = 21
#: Names of the SMPL neutral model, in order of preference (case-insensitive).
SMPL_NAMES = (
    "SMPL_NEUTRAL.pkl",
    "SMPL_NEUTRAL.npz",
    "basicModel_neutral_lbs_10_207_0_v1.0.0.pkl",
    "basicmodel_neutral_lbs_10_207_0_v1.1.0.pkl",
)
#: Folders under the weights folder that never hold the user's files.
_SKIP_DIRS = {"huggingface", ".cache", "downloads"}
USER_AGENT = "pose-tracker-fetch-weights/0.1 (+urllib)"
_CHUNK = 1 << 20


class FetchError(RuntimeError):
    """A file could not be fetched or failed its checks; the message says what to do."""


@dataclass(frozen=True, kw_only=True)
class Source:
    """Where a file can come from.

    Attributes:
        url: ``https://`` (or any URL urllib opens) of the file, or of a tar archive.
        member: Path of the file inside the archive at ``url`` (matched as a suffix, so a
            leading ``./`` or folder does not matter); None when ``url`` is the file itself.

    """

    url: str
    member: str | None = None


@dataclass(frozen=True, kw_only=True)
class Artifact:
    """A file to fetch into the weights folder, with its checks.

    Attributes:
        filename: Its name in the weights folder.
        sources: Where to get it, tried in order.
        size: Exact size in bytes, when known.
        sha256: Hex SHA-256, when known.
        check: A content check that raises on a bad file (e.g. loading it), or None.

    """

    filename: str
    sources: tuple[Source, ...]
    size: int | None = None
    sha256: str | None = None
    check: Callable[[Path], None] | None = field(default=None, compare=False)


def _check_zip(path: Path) -> None:
    """Check that a file is a PyTorch (zip) checkpoint, not a truncated or HTML answer."""
    if not zipfile.is_zipfile(path):
        raise FetchError(f"{path.name} is not a PyTorch (zip) checkpoint")


def _check_regressor(path: Path) -> None:
    from tracker_tools.hmr2.smpl_file import SMPLFileError, load_extra_regressor

    try:
        load_extra_regressor(path)
    except (SMPLFileError, ValueError, EOFError, OSError) as error:
        raise FetchError(f"{path.name} is not HMR2's (19, 6890) regressor: {error}") from error


def _hf(base: str, revision: str, path: str) -> str:
    return f"{base}/{revision}/{urllib.parse.quote(path)}"


#: The official HMR2 checkpoint (HMR 2.0b, as 4D-Humans' demo loads it).
CHECKPOINT = Artifact(
    filename="epoch=35-step=1000000.ckpt",
    size=CHECKPOINT_SIZE,
    check=_check_zip,
    sources=(
        Source(url=_UTEXAS, member=ARCHIVE_CHECKPOINT),
        Source(url=_hf(_HF_CAMENDURU, "main", ARCHIVE_NAME), member=ARCHIVE_CHECKPOINT),
        Source(url=_hf(_HF_CAMENDURU, "main", "HMR2/" + ARCHIVE_CHECKPOINT)),
        Source(url=f"{_HF_LAMIANLBE}/{urllib.parse.quote(ARCHIVE_CHECKPOINT.removeprefix('logs/'))}"),
        Source(url=_HISTORICAL, member=ARCHIVE_CHECKPOINT),
    ),
)
#: HMR2's extra joint regressor (19 joints beyond SMPL's 24).
EXTRA_REGRESSOR = Artifact(
    filename="SMPL_to_J19.pkl",
    check=_check_regressor,
    sources=(
        Source(url=_UTEXAS, member=ARCHIVE_REGRESSOR),
        Source(url=_hf(_HF_CAMENDURU, "main", ARCHIVE_NAME), member=ARCHIVE_REGRESSOR),
        Source(
            url=_hf(_HF_CAMENDURU, "f5f35fe4ce8f4f9e989d2cad0def6a019fb116a2", "SMPL_to_J19.pkl")
        ),
        Source(url=_HISTORICAL, member=ARCHIVE_REGRESSOR),
    ),
)


# ------------------------------------------------------------------------------ download


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _partial_path(dest: Path, url: str) -> Path:
    """Per-URL partial file: a resumed download never mixes two mirrors' bytes."""
    tag = hashlib.sha256(url.encode()).hexdigest()[:10]
    return dest.with_name(f"{dest.name}.{tag}.partial")


def download(url: str, dest: Path, *, timeout_s: float = 60.0) -> Path:
    """Download ``url`` to ``dest``, resuming an earlier interrupted download of the same URL.

    Bytes go to a partial file beside ``dest`` that is renamed only when complete: ``dest``
    never holds half a file. A server that ignores the ``Range`` request (answers 200)
    restarts the download from the beginning.

    Args:
        url: What to download (redirects are followed).
        dest: Where the complete file goes (replaced if present).
        timeout_s: Socket timeout for connecting and for each read.

    Returns:
        ``dest``.

    Raises:
        FetchError: HTTP or network failure, or fewer bytes than announced.

    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = _partial_path(dest, url)
    have = partial.stat().st_size if partial.exists() else 0
    headers = {"User-Agent": USER_AGENT}
    if have:
        headers["Range"] = f"bytes={have}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            resumed = have > 0 and response.status == 206
            if resumed:
                start = response.headers.get("Content-Range", "").removeprefix("bytes ")
                if not start.startswith(f"{have}-"):
                    raise FetchError(f"{url}: asked bytes from {have}, got range {start!r}")
                log.info("resuming %s at %.1f MB", url, have / 1e6)
            else:
                have = 0
            length = response.headers.get("Content-Length")
            total = have + int(length) if length is not None else None
            received = _copy(response, partial, append=resumed, start=have, total=total, url=url)
    except urllib.error.HTTPError as error:
        error.close()  # it holds the connection
        if error.code == 416 and have:  # our partial file is already whole (or stale)
            partial.unlink()
            return download(url, dest, timeout_s=timeout_s)
        raise FetchError(f"{url}: HTTP {error.code} {error.reason}") from error
    except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
        reason = getattr(error, "reason", error)
        raise FetchError(f"{url}: {reason}") from error
    if total is not None and received != total:
        raise FetchError(f"{url}: got {received} bytes of {total}; run again to resume")
    partial.replace(dest)
    return dest


def _copy(
    response: http.client.HTTPResponse,
    partial: Path,
    *,
    append: bool,
    start: int,
    total: int | None,
    url: str,
) -> int:
    """Stream a response into ``partial``; log progress every ~5 %. Returns the file's size."""
    step = max(total // 20, _CHUNK) if total else 256 * _CHUNK
    next_report = start + step
    written = start
    with partial.open("ab" if append else "wb") as out:
        while chunk := response.read(_CHUNK):
            out.write(chunk)
            written += len(chunk)
            if written >= next_report:
                share = f" ({100 * written / total:.0f} %)" if total else ""
                log.info("%s: %.0f MB%s", url, written / 1e6, share)
                next_report += step
    return written


# ------------------------------------------------------------------------- archives, checks


def _member_matches(name: str, member: str) -> bool:
    name = name.removeprefix("./")
    return name == member or name.endswith("/" + member)


def extract_member(archive: Path, member: str, dest: Path) -> Path:
    """Extract one regular file of a tar archive (gzip or plain) to ``dest``.

    Only the file's bytes are written, to ``dest``: names inside the archive never become
    paths here.

    Raises:
        FetchError: The archive is unreadable or has no such regular file.

    """
    partial = dest.with_name(dest.name + ".extracting")
    try:
        with tarfile.open(archive, "r:*") as tar:
            for info in tar:
                if info.isfile() and _member_matches(info.name, member):
                    stream = tar.extractfile(info)
                    assert stream is not None  # a regular file always has one
                    with partial.open("wb") as out:
                        while chunk := stream.read(_CHUNK):
                            out.write(chunk)
                    partial.replace(dest)
                    return dest
    except (tarfile.TarError, EOFError, OSError) as error:
        partial.unlink(missing_ok=True)
        raise FetchError(f"{archive.name} is not a readable tar archive: {error}") from error
    raise FetchError(f"{archive.name} has no file {member}")


def verify(path: Path, artifact: Artifact) -> str:
    """Check a file against what is known of the artifact.

    Returns:
        The file's SHA-256 (hex), for the record.

    Raises:
        FetchError: Wrong size, wrong SHA-256 or failed content check; says expected vs got.

    """
    size = path.stat().st_size
    if artifact.size is not None and size != artifact.size:
        raise FetchError(f"{path.name}: expected {artifact.size} bytes, got {size}")
    digest = sha256_of(path)
    if artifact.sha256 is not None and digest != artifact.sha256.lower():
        raise FetchError(f"{path.name}: expected SHA-256 {artifact.sha256}, got {digest}")
    if artifact.check is not None:
        artifact.check(path)
    return digest


@dataclass(frozen=True)
class Fetched:
    """A verified file in the weights folder and where it came from."""

    path: Path
    sha256: str
    origin: str


def given(path: Path, artifact: Artifact) -> Fetched:
    """Take a file named on the command line, with the content check only (no size, no hash).

    Raises:
        FetchError: It is missing or fails the artifact's content check.

    """
    if not path.is_file():
        raise FetchError(f"{path} does not exist")
    if artifact.check is not None:
        artifact.check(path)
    return Fetched(path, sha256_of(path), "given on the command line")


def _archive_path(weights_dir: Path, url: str) -> Path:
    return weights_dir / Path(urllib.parse.urlparse(url).path).name


def fetch(
    artifact: Artifact,
    weights_dir: Path,
    *,
    timeout_s: float = 60.0,
    failed: set[str] | None = None,
) -> Fetched:
    """Get a verified copy of ``artifact`` into ``weights_dir``.

    A copy already there is verified and used. Else each source is tried in order; for an
    archive source, an archive already in the weights folder (downloaded before, or put
    there by hand) is used before any download. An archive whose content proves wrong is
    renamed ``<name>.bad`` (kept for inspection, out of the way of the next mirror).

    Args:
        artifact: What to fetch.
        weights_dir: The weights folder.
        timeout_s: Network timeout per connection and read.
        failed: URLs that failed so far (updated): shared between artifacts so that a dead
            mirror is not tried twice.

    Returns:
        The verified file.

    Raises:
        FetchError: Every source failed; the message lists them and says what to do.

    """
    weights_dir.mkdir(parents=True, exist_ok=True)
    target = weights_dir / artifact.filename
    failed = set() if failed is None else failed
    if target.exists():
        try:
            return Fetched(target, verify(target, artifact), "already in the weights folder")
        except FetchError as error:
            raise FetchError(
                f"{target} is there but fails its check ({error}): remove it and run again"
            ) from error
    failures = []
    for source in artifact.sources:
        label = source.url + (f" ({source.member})" if source.member else "")
        candidate = target.with_name(target.name + ".candidate")
        try:
            digest = _try_source(source, artifact, weights_dir, candidate, timeout_s, failed)
        except FetchError as error:
            candidate.unlink(missing_ok=True)
            log.warning("%s: %s", artifact.filename, error)
            failures.append(f"  - {label}: {error}")
            continue
        candidate.replace(target)
        log.info("%s from %s (sha256 %s)", artifact.filename, label, digest)
        return Fetched(target, digest, label)
    raise FetchError(
        f"could not fetch {artifact.filename}; every source failed:\n"
        + "\n".join(failures)
        + f"\nGet 4D-Humans' {ARCHIVE_NAME} another way (a browser or another machine, from one"
        " of the URLs above or a mirror named in the 4D-Humans issues, e.g. #180) and put it"
        f" in {weights_dir}/ (or put {CHECKPOINT.filename} and {EXTRA_REGRESSOR.filename}"
        " there), then run this again: files in the weights folder are used as they are."
    )


def _try_source(
    source: Source,
    artifact: Artifact,
    weights_dir: Path,
    candidate: Path,
    timeout_s: float,
    failed: set[str],
) -> str:
    """Fetch ``artifact`` from one source into ``candidate`` and verify it; return its hash."""
    if source.member is None:
        if source.url in failed:
            raise FetchError("failed before")
        try:
            download(source.url, candidate, timeout_s=timeout_s)
            return verify(candidate, artifact)
        except FetchError:
            failed.add(source.url)
            raise
    archive = _archive_path(weights_dir, source.url)
    if not archive.exists():
        if source.url in failed:
            raise FetchError("failed before")
        log.info("downloading %s", source.url)
        try:
            download(source.url, archive, timeout_s=timeout_s)
        except FetchError:
            failed.add(source.url)
            raise
    try:
        extract_member(archive, source.member, candidate)
        return verify(candidate, artifact)
    except FetchError as error:
        archive.replace(archive.with_name(archive.name + ".bad"))
        raise FetchError(f"{error} ({archive.name} renamed {archive.name}.bad)") from error


# -------------------------------------------------------------------------------- SMPL


def _walk_files(root: Path) -> Iterator[Path]:
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
        for name in sorted(files):
            yield Path(folder) / name


def find_smpl(weights_dir: Path) -> Path:
    """Find and check the user's SMPL neutral model anywhere under the weights folder.

    Raises:
        FetchError: None found (the message says where to get it), or it does not load.

    """
    by_name: dict[str, list[Path]] = {}
    for path in _walk_files(weights_dir) if weights_dir.is_dir() else ():
        by_name.setdefault(path.name.lower(), []).append(path)
    for name in SMPL_NAMES:
        if found := by_name.get(name.lower()):
            path = found[0]
            break
    else:
        raise FetchError(
            f"no SMPL neutral body model under {weights_dir}/ (looked for {', '.join(SMPL_NAMES)})."
            " SMPL cannot be downloaded for you: register at https://smpl.is.tue.mpg.de (or"
            " https://smplify.is.tue.mpg.de, whose download holds the neutral model), accept"
            " the licence, download it and put the neutral .pkl file in that folder."
        )
    from tracker_tools.hmr2.smpl_file import SMPLFileError, load_smpl

    try:
        load_smpl(path)
    except (SMPLFileError, ValueError, OSError, EOFError) as error:
        raise FetchError(f"{path} is not a usable SMPL body model: {error}") from error
    log.info("SMPL body model: %s", path)
    return path


# ------------------------------------------------------------------------------ ONNX checks


def check_onnx_for_triton(path: Path) -> tuple[int, int]:
    """Check that the Triton image's ONNX Runtime can read this graph.

    Returns:
        The graph's IR version and default-domain opset.

    Raises:
        FetchError: IR version or opset above what ORT 1.19 (Triton 24.10) reads.

    """
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if model.ir_version > TRITON_ORT_MAX_IR or opset > TRITON_ORT_MAX_OPSET:
        raise FetchError(
            f"{path}: IR version {model.ir_version}, opset {opset}; the Triton image reads at"
            f" most IR {TRITON_ORT_MAX_IR}, opset {TRITON_ORT_MAX_OPSET}"
        )
    return model.ir_version, opset


def write_manifest(version_dir: Path, record: dict[str, object]) -> Path:
    """Write ``<model>/1/export.json``: what was exported, from what, when."""
    path = version_dir / "export.json"
    stamped = {**record, "exported_at": datetime.datetime.now(datetime.UTC).isoformat()}
    path.write_text(json.dumps(stamped, indent=2) + "\n")
    path.chmod(0o644)
    return path
