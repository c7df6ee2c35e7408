"""Hypothesis against the upload endpoint of a real server: multipart forms and label fields.

Whatever the form, the answer is a clean JSON error or a stored document that reads
back byte for byte; nothing refused is ever listed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.gateway.faults.client import DemoServer as Upload
from tests.gateway.faults.client import call, demo_server

pytestmark = pytest.mark.slow  # subprocesses or many cases: `./dev test -m "not slow"` skips it

CLEAN_ERRORS = {400, 403, 413, 415, 422}
FIELD_NAMES = ["file", "label", "title", "tags", "filename", "csrf", "x", ""]
LABEL_PARTS = [
    "UNCLASSIFIED", "CONFIDENTIAL", "SECRET", "TOP SECRET", "//", "/", "LOGISTICS", "NOFORN",
    "REL TO", "FRA", "USA", ",", " ", "secret", "SECRET//LOGISTICS//REL TO FRA, USA",
]  # fmt: skip


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upload]:
    data_dir = tmp_path_factory.mktemp("fuzz") / "var"
    with demo_server(data_dir, {"SEKISHO_HTTP_MAX_BODY_MIB": "1"}) as server:
        yield server


labels = st.one_of(
    st.lists(st.sampled_from(LABEL_PARTS), max_size=6).map("".join),
    st.text(max_size=80),
)
field_values = st.one_of(labels, st.text(max_size=300), st.just("../../etc/passwd"))
filenames = st.one_of(
    st.none(),
    st.sampled_from(
        ["plan.txt", "../../etc/passwd", "..\\boot.ini", "a/b.txt", "", ".", "\u202e.txt"]
    ),
    st.text(max_size=40),
)


@st.composite
def parts(draw: st.DrawFn) -> tuple[str, str | None, bytes, str | None]:
    """One form part: name, filename, content and content type."""
    name = draw(st.sampled_from(FIELD_NAMES) | st.text(max_size=10))
    content = (
        draw(st.binary(max_size=3000))
        if name == "file"
        else draw(field_values).encode("utf-8", "surrogatepass")
    )
    media = draw(st.none() | st.sampled_from(["text/plain", "application/pdf", "multipart/mixed"]))
    return name, draw(filenames), content, media


VALID_LABELS = ["UNCLASSIFIED", "CONFIDENTIAL", "SECRET//LOGISTICS", "SECRET//REL TO FRA, USA"]


@st.composite
def plausible_forms(draw: st.DrawFn) -> list[tuple[str, str | None, bytes, str | None]]:
    """A form a client would send (label, title and file), with random extras, order and values."""
    label = draw(st.sampled_from(VALID_LABELS) | labels)
    title = draw(st.sampled_from(["Supply manifest"]) | st.text(max_size=40))
    form: list[tuple[str, str | None, bytes, str | None]] = [
        ("label", None, label.encode("utf-8", "surrogatepass"), None),
        ("title", None, title.encode("utf-8", "surrogatepass"), None),
    ]
    for name in draw(st.lists(st.sampled_from(["tags", "filename"]), max_size=2, unique=True)):
        form.append((name, None, draw(field_values).encode("utf-8", "surrogatepass"), None))
    form.append(("file", draw(filenames), draw(st.binary(min_size=1, max_size=3000)), None))
    return draw(st.permutations(form))


def quoted(value: str) -> str:
    """A header parameter value as browsers send it (quotes and newlines escaped)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return escaped.replace("\r", "%0D").replace("\n", "%0A")


def multipart_body(
    form: list[tuple[str, str | None, bytes, str | None]], boundary: str, cut: int | None
) -> bytes:
    """The encoded form, optionally cut off after ``cut`` bytes."""
    chunks = []
    for name, filename, content, media in form:
        disposition = f'form-data; name="{quoted(name)}"'
        if filename is not None:
            disposition += f'; filename="{quoted(filename)}"'
        head = f"--{boundary}\r\nContent-Disposition: {disposition}\r\n"
        if media:
            head += f"Content-Type: {media}\r\n"
        chunks.append(head.encode("utf-8", "surrogatepass") + b"\r\n" + content + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    body = b"".join(chunks)
    return body if cut is None else body[:cut]


def listed(node: Upload) -> int:
    """How many documents alice sees."""
    count = 0
    while True:
        url = f"{node.base}/api/v1/documents?limit=200&offset={count}"
        status, raw = call("GET", url, node.token)
        assert status == 200, raw
        page = len(json.loads(raw)["documents"])
        count += page
        if page < 200:
            return count


def expected_content(form: list[tuple[str, str | None, bytes, str | None]]) -> bytes:
    """The content of the first ``file`` part (what a stored document must hold)."""
    return next(content for name, _, content, _ in form if name == "file")


@settings(
    max_examples=int(os.environ.get("SEKISHO_FUZZ_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=True,
)
@given(
    form=plausible_forms() | st.lists(parts(), max_size=6),
    boundary=st.sampled_from(["b0undary"] * 4 + ["x" * 70, "a b", "--", "ÿ"]),
    declared=st.sampled_from(["b0undary"] * 4 + ["other", None]),
    cut=st.sampled_from([None, None, None]) | st.integers(min_value=0, max_value=4000),
)
def test_random_forms_get_a_clean_answer_and_only_accepted_ones_are_stored(
    node: Upload,
    form: list[tuple[str, str | None, bytes, str | None]],
    boundary: str,
    declared: str | None,
    cut: int | None,
) -> None:
    before = listed(node)
    content_type = "multipart/form-data" + (f"; boundary={declared}" if declared else "")
    if declared == "b0undary":
        content_type = f'multipart/form-data; boundary="{boundary}"'
    body = multipart_body(form, boundary, cut)
    status, raw = call(
        "POST", f"{node.base}/api/v1/documents", node.token, body, content_type=content_type
    )
    assert status < 500, raw
    event(f"status {status}" + ("" if status == 201 else " " + json.loads(raw)["error"]))
    if status == 201:
        created = json.loads(raw)
        got, data = call("GET", f"{node.base}/api/v1/documents/{created['id']}/content", node.token)
        assert got == 200 and data == expected_content(form)
        assert (
            "/" not in created["version"]["filename"] and "\\" not in created["version"]["filename"]
        )
        assert listed(node) == before + 1
    else:
        assert status in CLEAN_ERRORS, (status, raw)
        assert set(json.loads(raw)) == {"error", "message"}
        assert listed(node) == before


@settings(max_examples=200, deadline=None, derandomize=True)
@given(label=st.sampled_from(VALID_LABELS) | labels)
def test_any_label_field_gets_a_clean_answer(node: Upload, label: str) -> None:
    query = urlencode({"title": "l", "filename": "l.txt", "label": label}, errors="surrogatepass")
    status, raw = call("POST", f"{node.base}/api/v1/documents?{query}", node.token, b"x")
    assert status < 500, raw
    event(f"status {status}")
    assert status in CLEAN_ERRORS | {201}, (status, raw)
    answer = json.loads(raw)
    if status == 201:
        assert answer["label"]  # what was stored is the normalised label
    else:
        assert set(answer) == {"error", "message"}
