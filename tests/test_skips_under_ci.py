"""Under CI nothing may skip, however pytest is started (tests/conftest.py): a skip fails,
except for tests marked ``optional``; ``require_module`` fails instead of skipping."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import pytest

from conftest import require_all

ROOT = pathlib.Path(__file__).resolve().parent.parent

SKIPPING = """
import pytest
from conftest import require_module

def test_passes():
    pass

def test_skips():
    pytest.skip("no server here")

@pytest.mark.skipif(True, reason="a condition holds")
def test_skipif():
    pass

def test_importorskip():
    pytest.importorskip("surely_no_such_module_tb")

def test_require_module():
    require_module("surely_no_such_module_tb", "ui")

@pytest.mark.optional
def test_optional():
    pytest.skip("optional: needs a MySQL server")

@pytest.mark.xfail(reason="known", strict=True)
def test_xfail():
    assert False
"""

SKIPPING_MODULE = """
import pytest
pytest.importorskip("surely_no_such_module_tb")

def test_never_collected():
    pass
"""


def run_pytest(tmp_path: pathlib.Path, env: dict[str, str], test: str) -> tuple[int, str]:
    """pytest on the test file ``test`` in ``tmp_path``, with this directory's conftest as a
    plugin (its hooks then apply there too) and ``env`` as the only CI variables."""
    (tmp_path / "test_skipping.py").write_text(test)
    environ = {k: v for k, v in os.environ.items() if k not in ("CI", "TRIALBOOK_TEST_REQUIRE_ALL")}
    path = os.pathsep.join([str(ROOT / "tests"), *sys.path])
    environ.update(env, PYTHONDONTWRITEBYTECODE="1", PYTHONPATH=path)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "conftest", "-p", "no:cacheprovider",
         "-c", os.devnull, "--rootdir", str(tmp_path), "-rfEs", "-q", "test_skipping.py"],
        cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    return done.returncode, done.stdout + done.stderr


def summary(output: str) -> str:
    return re.findall(r"^=*\s*(\S.*) in [\d.]+s", output, flags=re.M)[-1]


def test_skips_are_skips_outside_ci(tmp_path: pathlib.Path) -> None:
    code, output = run_pytest(tmp_path, {}, SKIPPING)
    assert code == pytest.ExitCode.OK, output
    assert summary(output) == "1 passed, 5 skipped, 1 xfailed", output
    code, output = run_pytest(tmp_path, {}, SKIPPING_MODULE)
    assert code == pytest.ExitCode.NO_TESTS_COLLECTED, output
    assert summary(output) == "1 skipped", output


@pytest.mark.parametrize(
    "env", [{"CI": "true"}, {"TRIALBOOK_TEST_REQUIRE_ALL": "1"}], ids=["CI", "REQUIRE_ALL"]
)
def test_every_skip_fails_under_ci_except_optional_tests(
    tmp_path: pathlib.Path, env: dict[str, str]
) -> None:
    code, output = run_pytest(tmp_path, env, SKIPPING)
    assert code == pytest.ExitCode.TESTS_FAILED, output
    # a skip in the call fails the test; one in its setup (skipif) is an error
    assert summary(output) == "3 failed, 1 passed, 1 skipped, 1 xfailed, 1 error", output
    failed = set(re.findall(r"^(?:FAILED|ERROR) \S+::(\w+)", output, flags=re.M))
    assert failed == {"test_skips", "test_skipif", "test_importorskip", "test_require_module"}
    assert "skipped under CI, where nothing may skip: no server here" in output
    assert "skipped under CI, where nothing may skip: a condition holds" in output
    assert "required under CI but unavailable: surely_no_such_module_tb" in output
    assert "SKIPPED [1] test_skipping.py" in output and "optional: needs a MySQL server" in output
    code, output = run_pytest(tmp_path, env, SKIPPING_MODULE)  # a module that skips itself
    assert code == pytest.ExitCode.INTERRUPTED, output
    assert summary(output) == "1 error", output
    assert "ERROR test_skipping.py - skipped under CI, where nothing may skip: " in output


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, False),
        ({"CI": "true"}, True),
        ({"CI": "True"}, True),
        ({"CI": "1"}, True),
        ({"CI": "false"}, False),
        ({"CI": ""}, False),
        ({"TRIALBOOK_TEST_REQUIRE_ALL": "1"}, True),
        ({"TRIALBOOK_TEST_REQUIRE_ALL": "0", "CI": "true"}, True),
    ],
)
def test_ci_is_recognized(environ: dict[str, str], expected: bool) -> None:
    assert require_all(environ) is expected
