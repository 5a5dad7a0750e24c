"""The documentation speaks for itself: every file it links or names is in the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")), ROOT / "workers/README.md"]
SOURCES = sorted(
    path for folder in ("src", "bench", "workers") for path in (ROOT / folder).rglob("*.py")
)
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
NAMED_PAGE = re.compile(r"(?<![\w/.-])((?:[\w.-]+/)*[\w.-]+\.md)\b")


def tracked_pages() -> set[str]:
    """Every markdown file of the repository, by path from the root and by file name."""
    names: set[str] = set()
    for path in ROOT.rglob("*.md"):
        relative = path.relative_to(ROOT)
        if relative.parts[0] in {".venv", ".git", ".pytest_cache", ".saassy"}:
            continue
        names |= {str(relative), relative.name}
    return names


def broken_links(page: Path) -> list[str]:
    broken = []
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        resolved = (page.parent / target).resolve()
        if not resolved.is_relative_to(ROOT) or not resolved.exists():
            broken.append(target)
    return broken


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(ROOT)))
def test_links_resolve_inside_the_repository(page: Path) -> None:
    assert broken_links(page) == []


def test_every_page_named_is_one_of_ours() -> None:
    """No page or docstring cites a document a reader of the repository does not have."""
    known = tracked_pages()
    strangers = {
        str(path.relative_to(ROOT)): sorted(
            name
            for name in set(NAMED_PAGE.findall(path.read_text(encoding="utf-8")))
            if name not in known and Path(name).name not in known
        )
        for path in PAGES + SOURCES
    }
    assert {path: names for path, names in strangers.items() if names} == {}
