"""docs/integrations.md is code: every fenced ```python block runs, one test per block.

A block runs in a fresh temporary working directory with ``TRIALBOOK_STORE`` pointing into it,
so the default store (``trialbook.create_session()``, an integration's run of its own) is that
folder. A block whose first lines are ``# requires: <module> [<extra>]`` needs those modules:
:func:`conftest.require_module` skips it where one is missing (and fails under CI). The block
ends with its own prints and assertions; the test then checks what it left in the store: at
least one run, and none still running or pending.

The blocks are fenced python, not ``>>>`` doctests, because the docs' doctests also run where
the libraries are not installed (Python 3.13 in CI has no torch).
"""

from __future__ import annotations

import pathlib
import re
from typing import NamedTuple

import pytest

from conftest import require_module
from trialbook.storage import open_store

ROOT = pathlib.Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "integrations.md"
REQUIRES = re.compile(r"#\s*requires:\s*(?P<module>[\w.]+)(?:\s+\[?(?P<extra>[\w-]+)\]?)?\s*$")


class Block(NamedTuple):
    """One fenced python block of the page: its section, first line number and code."""

    section: str
    line: int
    code: str

    @property
    def requires(self) -> list[tuple[str, str]]:
        """The (module, extra) pairs of the block's leading ``# requires:`` lines."""
        needed = []
        for text in self.code.splitlines():
            match = REQUIRES.match(text.strip())
            if match is None:
                break
            module = match["module"]
            needed.append((module, match["extra"] or module.split(".")[0]))
        return needed


def blocks(path: pathlib.Path) -> list[Block]:
    """The fenced python blocks of ``path`` with the ``## `` section each one is in."""
    found = []
    section = "intro"
    lines = path.read_text().splitlines()
    start: int | None = None
    for number, text in enumerate(lines, start=1):
        if start is None and text.startswith("## "):
            section = text[3:].strip()
        elif start is None and text.strip() == "```python":
            start = number
        elif start is not None and text.strip() == "```":
            found.append(Block(section, start, "\n".join(lines[start : number - 1]) + "\n"))
            start = None
    if start is not None:
        msg = f"{path}:{start}: a ```python block is never closed"
        raise ValueError(msg)
    return found


def _test_id(block: Block, all_blocks: list[Block]) -> str:
    slug = re.sub(r"\W+", "_", block.section.lower()).strip("_")
    same = [b for b in all_blocks if b.section == block.section]
    return slug if len(same) == 1 else f"{slug}_{same.index(block) + 1}"


BLOCKS = blocks(PAGE)
IDS = [_test_id(b, BLOCKS) for b in BLOCKS]


def test_the_page_has_examples() -> None:
    """Every integration section has a runnable block; a block outside a section would be
    untested in spirit (the intro has no code)."""
    assert BLOCKS, "docs/integrations.md has no ```python block"
    sections = [t[3:].strip() for t in PAGE.read_text().splitlines() if t.startswith("## ")]
    documented = {b.section for b in BLOCKS}
    assert [s for s in sections if s not in documented] == ["Where the values go"]


def test_blocks_are_found_with_their_requirements(tmp_path: pathlib.Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n\n## First\n\ntext\n\n```python\n# requires: xgboost [xgboost]\n"
        "# requires: sklearn.base\nx = 1\n```\n\n```sh\nls\n```\n\n## Second\n\n"
        "```python\nprint(2)\n```\n"
    )
    first, second = blocks(page)
    assert first == Block(
        "First", 7, "# requires: xgboost [xgboost]\n# requires: sklearn.base\nx = 1\n"
    )
    assert first.requires == [("xgboost", "xgboost"), ("sklearn.base", "sklearn")]
    assert second == Block("Second", 19, "print(2)\n") and second.requires == []
    page.write_text("## Open\n\n```python\nx = 1\n")
    with pytest.raises(ValueError, match=r"page\.md:3: a ```python block is never closed"):
        blocks(page)


@pytest.mark.parametrize("block", BLOCKS, ids=IDS)
def test_example_runs_and_records(
    block: Block, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for module, extra in block.requires:
        require_module(module, extra)
    store_path = tmp_path / "store"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TRIALBOOK_STORE", str(store_path))
    code = compile("\n" * block.line + block.code, str(PAGE), "exec")
    exec(code, {"__name__": "__main__"})
    store = open_store(str(store_path))
    try:
        statuses = [
            record.status
            for info in store.list_experiments()
            for record in store.read_runs(info.id)
        ]
    finally:
        store.close()
    assert statuses, f"the {block.section} example recorded no run in the default store"
    assert not {"running", "pending"} & set(statuses), statuses
