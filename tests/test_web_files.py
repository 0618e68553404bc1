"""The UI's artifact browser API (issue 21): the tree of a run's logged artifacts, streamed
downloads, bounded previews, refused paths, internal values hidden; real SQLite stores through
Starlette's test client."""

from __future__ import annotations

import json
import struct
import urllib.parse
import zlib
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from conftest import require_module

require_module("starlette", "ui")

from starlette.testclient import TestClient  # noqa: E402 - after the check of the ui extra

from trialbook.codecs import encode  # noqa: E402
from trialbook.storage import open_store  # noqa: E402
from trialbook.storage.artifacts import log_artifact  # noqa: E402
from trialbook.storage.records import RunRecord  # noqa: E402
from trialbook.web import create_app  # noqa: E402

TOKEN = "files-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
EXP = "art/ü x"
BASE = "/api/experiments/art%2F%C3%BC%20x/runs/1"


def png(width: int = 3, height: int = 2, rgb: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    """A tiny valid PNG of one colour (pure Python)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(row * height)) + chunk(b"IEND", b""))  # fmt: skip


def make_folder(root: Path) -> Path:
    """A model-like folder: model.json, nested files, a name with a space and unicode."""
    folder = root / "net"
    (folder / "weights" / "layer één").mkdir(parents=True)
    (folder / "model.json").write_text(json.dumps({  # as trialbook.models writes it
        "format": 1, "flavour": "sklearn", "class": "sklearn.linear_model.Ridge",
        "python": "3.12", "requirements": {"scikit-learn": "1.5"}}))  # fmt: skip
    (folder / "weights" / "layer één" / "w 1.bin").write_bytes(b"\x00\x01" * 10)
    (folder / "README.md").write_text("# net\n")
    return folder


def fill_artifacts(store: Any, tmp_path: Path, *, chunk_size: int = 8 * 1024 * 1024) -> int:
    """Run 1 of EXP: text, log, JSON, CSV, Parquet, PNG, SVG, bytes, a folder; a persisted
    graph output and a named value next to them. Run 2 has no artifact."""
    exp = store.create_experiment(EXP).id
    store.write_runs(exp, [RunRecord(1, status="done"), RunRecord(2, status="done")],
                     artifacts=[(1, "persist/loss", encode(b"curve")),
                                (1, "model", encode(b"weights"))])  # fmt: skip
    sources = tmp_path / "sources"
    sources.mkdir()
    log_lines = "".join(f"step {i} loss {1 / (i + 1):.4f}\n" for i in range(20_000))
    files = {
        "notes.txt": "hello artifacts\n",
        "train.log": log_lines,
        "config.json": '{"lr": 0.1, "layers": [64, 64], "name": "é"}',
        "scores.csv": "epoch,acc\n" + "".join(f"{i},{i / 100}\n" for i in range(50)),
    }
    for name, text in files.items():
        (sources / name).write_text(text, encoding="utf-8")
        log_artifact(store, exp, 1, sources / name, chunk_size=chunk_size)
    frame = pd.DataFrame({"k": range(30), "v": [f"row {i}" for i in range(30)]})
    frame.to_parquet(sources / "table.parquet")
    log_artifact(store, exp, 1, sources / "table.parquet", chunk_size=chunk_size)
    log_artifact(store, exp, 1, png(), name="plots/loss curve.png", chunk_size=chunk_size)
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><script>x()</script></svg>'
    log_artifact(store, exp, 1, svg, name="diagram.svg")
    log_artifact(store, exp, 1, b"\x00\xff" * 4, name="blob")
    log_artifact(store, exp, 1, make_folder(sources), chunk_size=chunk_size)
    return exp


@pytest.fixture
def store(tmp_path: Path) -> Any:
    with open_store(tmp_path / "store") as store:
        fill_artifacts(store, tmp_path, chunk_size=1000)
        yield store


@pytest.fixture
def client(store: Any) -> TestClient:
    with TestClient(create_app(store, token=TOKEN), headers=AUTH) as client:
        yield client


def test_run_page_hides_the_internal_values_of_artifacts(client: TestClient) -> None:
    run = client.get(BASE).json()
    assert run["artifacts"] == {"persist/loss": len(encode(b"curve").data),
                                "model": len(encode(b"weights").data)}  # fmt: skip
    assert client.get(BASE + "/artifacts/model").content == encode(b"weights").data
    internal = client.get(BASE + "/artifacts/" + "artifact%2Fnotes.txt")
    assert internal.status_code == 404


def test_files_tree_lists_artifacts_folders_sizes_types_digests(client: TestClient) -> None:
    answer = client.get(BASE + "/files")
    assert answer.status_code == 200
    tree = {a["name"]: a for a in answer.json()["artifacts"]}
    assert list(tree) == sorted(tree)
    assert set(tree) == {"notes.txt", "train.log", "config.json", "scores.csv", "table.parquet",
                         "plots/loss curve.png", "diagram.svg", "blob", "net"}  # fmt: skip
    notes = tree["notes.txt"]
    assert (notes["kind"], notes["size"], notes["media_type"]) == ("file", 16, "text/plain")
    assert len(notes["digest"]) == 64
    assert tree["train.log"]["media_type"] == "text/plain"
    assert tree["table.parquet"]["media_type"] == "application/vnd.apache.parquet"
    assert tree["plots/loss curve.png"]["kind"] == "bytes"
    net = tree["net"]
    assert net["kind"] == "folder" and net["media_type"] == "inode/directory"
    assert [(n["type"], n["path"]) for n in net["children"]] == [
        ("folder", "weights"),
        ("file", "README.md"),
        ("file", "model.json"),
    ]
    [layer] = net["children"][0]["children"]
    assert layer["path"] == "weights/layer één" and layer["size"] == 20
    assert layer["children"][0]["path"] == "weights/layer één/w 1.bin"
    assert net["model"] == {
        "flavour": "sklearn",
        "class": "sklearn.linear_model.Ridge",
        "versions": {"python": "3.12", "scikit-learn": "1.5"},
        "load": 'trialbook.load_model("trialbook:art/ü x/1/net")',
    }
    assert client.get(BASE.replace("/1", "/2") + "/files").json()["artifacts"] == []
    assert client.get(BASE.replace("/1", "/9") + "/files").status_code == 404


def test_download_streams_a_multi_piece_file_with_its_headers(
    client: TestClient, store: Any
) -> None:
    """train.log is over 400 KB, stored in pieces of 1000 bytes: it comes back whole."""
    expected = "".join(f"step {i} loss {1 / (i + 1):.4f}\n" for i in range(20_000)).encode()
    with client.stream("GET", BASE + "/files/train.log/download") as answer:
        assert answer.status_code == 200
        parts = list(answer.iter_bytes())
        headers = answer.headers
    assert b"".join(parts) == expected
    assert len(parts) > 100  # sent piece by piece (pieces of 1000 bytes)
    assert headers["content-length"] == str(len(expected))
    assert headers["content-type"].startswith("text/plain")
    assert headers["content-disposition"] == (
        "attachment; filename=\"train.log\"; filename*=UTF-8''train.log"
    )
    assert headers["x-content-type-options"] == "nosniff"
    path = "weights/layer één/w 1.bin"
    answer = client.get(BASE + "/files/net/download", params={"path": path})
    assert answer.content == b"\x00\x01" * 10
    assert "filename*=UTF-8''w%201.bin" in answer.headers["content-disposition"]
    image = client.get(BASE + "/files/plots%2Floss%20curve.png/download?inline=1")
    assert image.content == png() and image.headers["content-type"] == "image/png"
    assert image.headers["content-disposition"].startswith("inline;")
    svg = client.get(BASE + "/files/diagram.svg/download?inline=1")
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert "sandbox" in svg.headers["content-security-policy"]
    text = client.get(BASE + "/files/notes.txt/download?inline=1")  # not an image: saved
    assert text.headers["content-disposition"].startswith("attachment;")


@pytest.mark.parametrize(
    "path",
    ["../notes.txt", "/etc/passwd", "weights/../../x", "a//b", "./model.json", "a\\b", "a\x00"],
)
def test_paths_leaving_the_artifact_are_refused(client: TestClient, path: str) -> None:
    for route in ("download", "preview"):
        answer = client.get(BASE + f"/files/net/{route}", params={"path": path})
        assert answer.status_code == 400, (route, path)
        assert "must be a relative path inside the artifact" in answer.json()["error"]


def test_unknown_artifacts_and_files_are_404(client: TestClient) -> None:
    assert client.get(BASE + "/files/nope/download").status_code == 404
    missing = client.get(BASE + "/files/net/preview", params={"path": "nope.txt"})
    assert missing.status_code == 404 and "model.json" in missing.json()["error"]
    assert client.get(BASE + "/files/net/download").status_code == 404  # a folder needs path
    assert client.get(BASE + "/files/notes.txt/download?path=x").status_code == 404


def test_previews_of_each_kind(client: TestClient) -> None:
    def get(name: str, path: str | None = None) -> dict[str, Any]:
        url = BASE + f"/files/{urllib.parse.quote(name, safe='')}/preview"
        answer = client.get(url, params={"path": path or ""})
        assert answer.status_code == 200, answer.text
        return answer.json()

    notes = get("notes.txt")
    assert (notes["type"], notes["text"], notes["truncated"]) == ("text", "hello artifacts\n",
                                                                  False)  # fmt: skip
    log = get("train.log")
    assert log["type"] == "text" and log["truncated"] is True
    assert len(log["text"].encode()) == 64 * 1024 and log["text"].startswith("step 0 loss")
    config = get("config.json")
    assert config["type"] == "json"
    assert config["text"] == json.dumps({"lr": 0.1, "layers": [64, 64], "name": "é"}, indent=2,
                                        ensure_ascii=False)  # fmt: skip
    scores = get("scores.csv")
    assert scores["type"] == "table" and scores["columns"] == ["epoch", "acc"]
    assert len(scores["rows"]) == 20 and scores["rows"][1] == ["1", "0.01"]
    table = get("table.parquet")
    assert table["type"] == "table" and table["columns"] == ["k", "v"]
    assert table["rows"][:2] == [[0, "row 0"], [1, "row 1"]] and len(table["rows"]) == 20
    assert table["total_rows"] == 30 and table["truncated"] is True
    image = get("plots/loss curve.png")
    assert image["type"] == "image"
    assert client.get(image["src"]).content == png()
    assert get("diagram.svg")["type"] == "image"  # an image, never inlined markup
    assert get("blob")["type"] == "none"
    model = get("net", "model.json")
    assert model["type"] == "json" and '"flavour": "sklearn"' in model["text"]
    assert get("net", "README.md")["text"] == "# net\n"


def test_a_large_parquet_file_is_not_read(monkeypatch: pytest.MonkeyPatch,
                                          client: TestClient) -> None:  # fmt: skip
    from trialbook.web import previews

    monkeypatch.setattr(previews, "PARQUET_LIMIT", 100)
    answer = client.get(BASE + "/files/table.parquet/preview").json()
    assert answer["type"] == "none" and "too large to preview" in answer["note"]


def test_the_files_routes_need_the_token(store: Any) -> None:
    with TestClient(create_app(store, token=TOKEN)) as anon:
        for route in ("/files", "/files/notes.txt/download", "/files/notes.txt/preview"):
            assert anon.get(BASE + route).status_code == 403


def test_a_broken_model_json_does_not_break_the_tree(store: Any, tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "model.json").write_text("[1, 2")
    exp = store.find_experiment(EXP).id
    log_artifact(store, exp, 2, folder)
    with TestClient(create_app(store, token=TOKEN), headers=AUTH) as client:
        [bad] = client.get(BASE.replace("/1", "/2") + "/files").json()["artifacts"]
    assert "not valid JSON" in bad["model"]["error"]
