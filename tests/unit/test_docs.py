"""The documentation stays inside the repository: README is a landing page, every
relative link points at a file (and heading) that exists, and nothing cites a design
file or path outside the repository; citations of docs/design.md name real sections."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOC_PAGES = sorted([README, *(ROOT / "docs").rglob("*.md")])
CITING_TREES = ("chappyd", "tests", "bench", "docs", "man")
# Spelled in pieces so that this file does not match itself.
FOREIGN_CITATIONS = ("DESIGN" + " §", ".." + "/shared", "/work" + "/shared", "docs/" + "readme/")

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
DESIGN_CITATION = re.compile(r"docs/design\.md (§\d+(?:\.\d+)?(?:, §\d+(?:\.\d+)?)*)")


def prose_lines(path: Path) -> list[str]:
    """The lines of a Markdown file outside fenced code blocks."""
    lines, fenced = [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            lines.append(line)
    return lines


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to '-'."""
    text = heading.strip().lower().replace("`", "")
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors_of(path: Path) -> set[str]:
    return {anchor(line.lstrip("#")) for line in prose_lines(path) if re.match(r"#+ ", line)}


def relative_links(path: Path) -> list[str]:
    found = []
    for line in prose_lines(path):
        for target in LINK.findall(line):
            if not re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: ...
                found.append(target)
    return found


def test_readme_is_a_landing_page_of_at_most_400_lines():
    assert len(README.read_text(encoding="utf-8").splitlines()) <= 400


def resolves(page: Path, target: str) -> bool:
    """A link from `page` names a file of the repository and, if any, one of its headings."""
    file_part, _, fragment = target.partition("#")
    linked = (page.parent / file_part).resolve() if file_part else page
    if not linked.is_file() or ROOT not in linked.parents:
        return False
    return not fragment or linked.suffix != ".md" or fragment in anchors_of(linked)


@pytest.mark.parametrize("page", DOC_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves_to_a_file_and_heading_in_the_repo(page: Path):
    assert [target for target in relative_links(page) if not resolves(page, target)] == []


def cited_files() -> list[Path]:
    files = []
    for tree in CITING_TREES:
        for path in sorted((ROOT / tree).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                files.append(path)
    return files


def test_no_file_cites_a_design_or_path_outside_the_repository():
    offenders = []
    for path in cited_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for citation in FOREIGN_CITATIONS:
            if citation in text:
                offenders.append(f"{path.relative_to(ROOT)}: {citation}")
    assert offenders == []


def design_sections() -> set[str]:
    numbers = set()
    for line in prose_lines(ROOT / "docs" / "design.md"):
        match = re.match(r"#{2,3} (\d+(?:\.\d+)?)\. ", line)
        if match:
            numbers.add(match.group(1))
    return numbers


def test_citations_of_docs_design_name_sections_that_exist():
    sections = design_sections()
    assert {str(n) for n in range(1, 17)} <= sections
    unknown = []
    for path in [*cited_files(), ROOT / "systemd" / "chappyd@.service",
                 ROOT / "packaging" / "test-deb.sh"]:
        text = path.read_text(encoding="utf-8", errors="replace")
        for group in DESIGN_CITATION.findall(text):
            for cited in re.findall(r"§(\d+)(?:\.(\d+))?", group):
                # §3.5 is step 5 of §3's numbered list; the section itself must exist
                if cited[0] not in sections:
                    unknown.append(f"{path.relative_to(ROOT)}: §{cited[0]}")
    assert unknown == []
