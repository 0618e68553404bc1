"""Reproducibility capture: code, environment, diffs, purity hashes, seeds."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import numpy as np

from trialbook import capture


def test_step_source_includes_decorators() -> None:
    def deco(f):
        return f

    @deco
    def step(x):
        return x

    assert capture.step_source(step) == "@deco\ndef step(x):\n    return x\n"


def test_source_diff_matches_the_seed() -> None:
    old = "@ex\ndef prepare_data(a, b):\n    return a + b\n"
    new = "@ex.persist\ndef prepare_data(a, b):\n    return a + b\n"
    assert capture.source_diff(old, new) == [
        "@@ -1,3 +1,3 @@",
        "-@ex",
        "+@ex.persist",
        " def prepare_data(a, b):",
        "     return a + b",
    ]


def test_environment_sections() -> None:
    env = capture.environment()
    python = json.loads(env["python"])
    assert python["version"] == ".".join(map(str, sys.version_info[:3]))
    assert json.loads(env["numpy"])["version"] == np.__version__
    assert any(line.startswith("pandas ") for line in env["requirements"].splitlines())
    assert json.loads(env["cpu"])["count"] >= 1
    assert capture.parse_environment(capture.environment_text(env)) == env


def test_environment_is_not_collected_at_import() -> None:
    code = "import trialbook, trialbook.capture as c; print(c.environment.cache_info().currsize)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "0"


def test_git_section_in_a_repository(tmp_path, monkeypatch) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    run = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*run, "init", "-q", "-b", "main", str(repo)], check=True)
    (repo / "a.txt").write_text("one\n")
    subprocess.run([*run, "-C", str(repo), "add", "a.txt"], check=True)
    subprocess.run([*run, "-C", str(repo), "commit", "-q", "-m", "first"], check=True)
    (repo / "a.txt").write_text("two\n")
    monkeypatch.chdir(repo)
    info = json.loads(capture._git())
    assert info["branch"] == "main"
    assert len(info["commit"]) == 40
    assert info["dirty"] is True
    assert "+two" in info["diff"]


def test_environment_diff_per_section() -> None:
    old = {"python": '{"version": "3.11.0"}', "requirements": "a 1\nb 1\n"}
    new = {"python": '{"version": "3.11.0"}', "requirements": "a 1\nb 2\nc 1\n"}
    assert capture.environment_diff(old, new) == {
        "requirements": ["@@ -2 +2,2 @@", "-b 1", "+b 2", "+c 1"]
    }
    assert capture.environment_diff(old, old) == {}


def test_purity_hashes() -> None:
    assert capture.input_hash("f", (1,), {"k": 2}) == capture.input_hash("f", (1,), {"k": 2})
    assert capture.input_hash("f", (1,), {"k": 2}) != capture.input_hash("f", (1,), {"k": 3})
    arr = np.arange(3)
    assert capture.output_hash(arr) == capture.output_hash(arr.copy())
    assert capture.output_hash(lambda: 1) is None


def test_seed_everything() -> None:
    capture.seed_everything(42)
    first = (random.random(), np.random.random())
    capture.seed_everything(42)
    assert (random.random(), np.random.random()) == first
    assert 0 <= capture.generate_seed() < 2**31


def test_gpu_section_from_nvidia_smi(tmp_path, monkeypatch) -> None:
    """A real `nvidia-smi` executable on PATH (here a script printing its CSV answer)."""
    monkeypatch.setenv("PATH", str(tmp_path))
    assert capture._gpu() is None  # no nvidia-smi: no section
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 'NVIDIA A100-SXM4-40GB, 535.104.05, 40960 MiB'\n")
    smi.chmod(0o755)
    info = json.loads(capture._gpu())
    assert info["gpus"] == ["NVIDIA A100-SXM4-40GB, 535.104.05, 40960 MiB"]
    assert capture.SECTION_TITLES["gpu"] == "GPU information has been changed"
