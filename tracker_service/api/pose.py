"""``POST /pose/hybrid``: the legacy frame endpoint, JSON or multipart, validated here."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, request
from werkzeug.datastructures import FileStorage

from tracker_service import resources
from tracker_service.exceptions import BadRequest, UnsupportedMediaType
from tracker_service.service import PoseRequest

bp = Blueprint("pose", __name__)

#: The session of legacy clients, which send no session id.
DEFAULT_SESSION = "default"
#: Session ids: 1 to 128 letters, digits and ``._:-``.
SESSION_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
SESSION_HEADER = "X-Session-Id"
#: Largest frame number (a 32-bit signed integer, as the backend counts frames).
MAX_FRAME_NUMBER = 2**31 - 1


#: The mobile route's form: the file field and the frame number's field.
FORM_FILE, FORM_FRAME_NUMBER = "frame", "frameNumber"


@bp.post("/pose/hybrid")
def pose_hybrid() -> Response:
    """Answer one frame with the main subject's 3D body (see ``LEGACY_API.md``).

    The body is JSON (a request without a ``Content-Type`` is read as JSON too) or, as the
    backend's mobile route posts it, ``multipart/form-data`` with the file field ``frame``;
    one declared as anything else (a URL-encoded form, plain text) is refused with 415.
    """
    mimetype = request.mimetype
    header = request.headers.get(SESSION_HEADER)
    if mimetype == "multipart/form-data":
        pose_request = parse_form(request.form, request.files, header)
    elif not mimetype or mimetype == "application/json" or mimetype.endswith("+json"):
        pose_request = parse_request(request.get_json(force=True, silent=True), header)
    else:
        raise UnsupportedMediaType(
            "the request body must be JSON (Content-Type: application/json) or "
            f"multipart/form-data with a file field {FORM_FILE!r}, got {mimetype}"
        )
    answer = resources.frames().answer(pose_request)
    return Response(answer, mimetype="application/json")


def parse_request(body: Any, header_session: str | None) -> PoseRequest:
    """Validate the JSON body (and the ``X-Session-Id`` header).

    Raises:
        BadRequest: The message says which field is wrong and why.

    """
    if body is None:
        raise BadRequest("the request body must be JSON with image_base64 (a base64 image)")
    if not isinstance(body, dict):
        raise BadRequest(f"the request body must be a JSON object, got {type(body).__name__}")
    image = body.get("image_base64")
    if image is None or image == "":
        raise BadRequest("image_base64 is missing: send the frame as a base64 JPEG or PNG")
    if not isinstance(image, str):
        raise BadRequest(f"image_base64 must be a string, got {type(image).__name__}")
    return PoseRequest(
        image=image,
        frame_number=_frame_number(body.get("frame_number", 0)),
        visualize=_flag(body.get("visualize", False)),
        session_id=_session_id(body.get("session_id"), header_session),
    )


def parse_form(
    form: Mapping[str, str], files: Mapping[str, FileStorage], header_session: str | None
) -> PoseRequest:
    """Validate a multipart form (and the ``X-Session-Id`` header).

    Fields: the file ``frame`` (JPEG or PNG), ``frameNumber`` (or ``frame_number``, the
    JSON name), ``visualize`` and ``session_id``, with the JSON form's rules.

    Raises:
        BadRequest: The message says which field is wrong and why.

    """
    upload = files.get(FORM_FILE)
    if upload is None:
        raise BadRequest(
            f"the form has no file field {FORM_FILE!r}: send the frame as a JPEG or PNG file "
            f"named {FORM_FILE!r} (fields found: {_short(sorted({*form, *files}))})"
        )
    image = upload.read()
    if not image:
        raise BadRequest(f"the file field {FORM_FILE!r} is empty")
    return PoseRequest(
        image=image,
        frame_number=_frame_number(form.get(FORM_FRAME_NUMBER, form.get("frame_number", 0))),
        visualize=_flag(form.get("visualize", False)),
        session_id=_session_id(form.get("session_id"), header_session),
    )


def _frame_number(value: Any) -> int:
    if isinstance(value, str) and value.strip().isdecimal() and len(value) <= 12:
        value = int(value)  # "12"; not "²" (a digit, not a decimal) nor 5000 digits
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if value is None:
        return 0
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not 0 <= value <= MAX_FRAME_NUMBER
    ):
        raise BadRequest(
            f"frame_number must be an integer from 0 to {MAX_FRAME_NUMBER}, got {_short(value)}"
        )
    return value


def _flag(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    raise BadRequest(f"visualize must be a boolean, got {_short(value)}")


def _session_id(field: Any, header: str | None) -> str:
    if field is not None and header is not None and field != header:
        raise BadRequest(
            f"session_id {_short(field)} and the {SESSION_HEADER} header {_short(header)} differ"
        )
    value = field if field is not None else header
    if value is None:
        return DEFAULT_SESSION
    if not isinstance(value, str) or not SESSION_ID.fullmatch(value):
        raise BadRequest(
            f"session_id must be 1 to 128 letters, digits or . _ : -, got {_short(value)}"
        )
    return value


def _short(value: Any, limit: int = 40) -> str:
    """``repr`` of a client's value, cut short: an answer never echoes a huge field."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}... ({len(text)} characters)"
