"""``POST /pose/hybrid``: the legacy frame endpoint; the request is validated here."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Response, current_app, request

from tracker_service.errors import BadRequest
from tracker_service.service import PoseRequest

bp = Blueprint("pose", __name__)

#: The session of legacy clients, which send no session id.
DEFAULT_SESSION = "default"
#: Session ids: 1 to 128 letters, digits and ``._:-``.
SESSION_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
SESSION_HEADER = "X-Session-Id"


@bp.post("/pose/hybrid")
def pose_hybrid() -> Response:
    """Answer one frame with the main subject's 3D body (see ``LEGACY_API.md``)."""
    body = request.get_json(force=True, silent=True)
    service = current_app.extensions["tracker"]
    answer = service.answer(parse_request(body, request.headers.get(SESSION_HEADER)))
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
        image_base64=image,
        frame_number=_frame_number(body.get("frame_number", 0)),
        visualize=_flag(body.get("visualize", False)),
        session_id=_session_id(body.get("session_id"), header_session),
    )


def _frame_number(value: Any) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadRequest(f"frame_number must be an integer >= 0, got {value!r}")
    return value


def _flag(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise BadRequest(f"visualize must be a boolean, got {value!r}")


def _session_id(field: Any, header: str | None) -> str:
    if field is not None and header is not None and field != header:
        raise BadRequest(f"session_id {field!r} and the {SESSION_HEADER} header {header!r} differ")
    value = field if field is not None else header
    if value is None:
        return DEFAULT_SESSION
    if not isinstance(value, str) or not SESSION_ID.fullmatch(value):
        raise BadRequest(
            f"session_id must be 1 to 128 letters, digits or . _ : -, got {value!r}"
        )
    return value
