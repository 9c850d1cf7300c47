"""The viewer's page, static files and lists, without Triton (Triton unreachable)."""

import io
import re

import pytest

from tests.unit.tracker_service.api.test_video import _clip, app, client  # noqa: F401


def _text(client, path: str) -> str:  # noqa: F811
    with client.get(path) as answer:
        assert answer.status_code == 200, path
        return answer.get_data(as_text=True)


def test_the_page_and_everything_it_loads_are_served_from_here(client):  # noqa: F811
    with client.get("/") as page:
        assert page.mimetype == "text/html" and page.headers["Cache-Control"] == "no-cache"
    html = _text(client, "/")
    local = re.findall(r'(?:src|href)="(/[^"]*)"', html)
    assert "/static/viewer.js" in local and "/static/viewer.css" in local
    script = _text(client, "/static/viewer.js")
    imports = re.findall(r'from "\./([^"]+)"', script)
    assert imports == ["vendor/three.module.min.js"]
    for path in [*local, *(f"/static/{name}" for name in imports)]:
        _text(client, path)
    assert _text(client, "/static/vendor/three.LICENSE").startswith("The MIT License")
    assert not re.search(r"https?://", html + script), "the page must load nothing from elsewhere"


def test_jobs_lists_the_latest_first_with_their_state(client, tmp_path):  # noqa: F811
    assert client.get("/jobs").get_json() == {"jobs": []}
    ids = []
    for name in ("a", "b"):
        answer = client.post(
            "/process_video_async",
            data={"video": (io.BytesIO(_clip(tmp_path / f"{name}.mp4")), f"{name}.mp4")},
            content_type="multipart/form-data",
        )
        ids.append(answer.get_json()["job_id"])
    jobs = client.get("/jobs?limit=5").get_json()["jobs"]
    assert [job["job_id"] for job in jobs] == ids[::-1]
    assert {"status", "created_at", "finished_at", "progress", "error"} <= set(jobs[0])
    assert [job["job_id"] for job in client.get("/jobs?limit=1").get_json()["jobs"]] == ids[1:]


@pytest.mark.parametrize("limit", ["0", "201", "ten", "-1", ""])
def test_a_bad_limit_is_400_in_words(client, limit):  # noqa: F811
    answer = client.get(f"/jobs?limit={limit}")
    assert answer.status_code == 400 and "limit must be an integer" in answer.get_json()["error"]


def test_live_is_empty_before_any_frame(client):  # noqa: F811
    assert client.get("/live").get_json() == {"sessions": [], "frames": []}
