"""README's first screen says what scaleproof is for, how to run and test it and shows a real report; every
relative link in README.md, docs/*.md and benchmarks/RESULTS.md reaches a file (and heading) of the repository."""

from __future__ import annotations

import re
import struct
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
LINKED_PAGES = [README, ROOT / "benchmarks" / "RESULTS.md", *sorted((ROOT / "docs").glob("*.md"))]
# Pages that other branches of the project add; README links them already. Pending until they are merged: remove
# a name here once docs/<name> exists (the test below fails while a listed page exists, to keep this list honest).
PENDING_PAGES: set[str] = set()  # pages linked before they exist (none now)

MD_LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_LINK = re.compile(r"<(?:a|img)\s[^>]*?(?:href|src)=\"([^\"]+)\"", re.I)
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")


def links(text: str) -> list[str]:
    """Link targets of a Markdown page, outside code blocks and inline code."""
    text = INLINE_CODE.sub("", FENCE.sub("", text))
    return [m.group(1) for m in MD_LINK.finditer(text)] + [m.group(1) for m in HTML_LINK.finditer(text)]


def github_anchors(text: str) -> set[str]:
    """The anchors GitHub gives a page's headings (lower case, punctuation dropped, spaces to hyphens, a repeated
    one numbered) and its explicit <a id> / <a name> anchors."""
    anchors: set[str] = set()
    seen: dict[str, int] = {}
    for m in re.finditer(r"^#{1,6}\s+(.+?)\s*#*\s*$", FENCE.sub("", text), re.M):
        heading = re.sub(r"`|\*\*|\[([^\]]*)\]\([^)]*\)", lambda g: g.group(1) or "", m.group(1))
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        anchors.add(slug if n == 0 else f"{slug}-{n}")
    anchors |= set(re.findall(r"<a\s+(?:id|name)=\"([^\"]+)\"", text))
    return anchors


def broken_links(page: Path) -> list[str]:
    problems = []
    for target in links(page.read_text(encoding="utf-8")):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto:
            continue
        path_part, _, anchor = target.partition("#")
        dest = page if not path_part else (page.parent / path_part).resolve()
        rel = dest.relative_to(ROOT).as_posix() if dest.is_relative_to(ROOT) else str(dest)
        if not dest.is_relative_to(ROOT):
            problems.append(f"{target}: outside the repository")
        elif rel in PENDING_PAGES and not dest.exists():
            continue
        elif not dest.exists():
            problems.append(f"{target}: no such file")
        elif anchor and dest.suffix == ".md" and anchor not in github_anchors(dest.read_text(encoding="utf-8")):
            problems.append(f"{target}: no heading with the anchor #{anchor} in {rel}")
    return problems


def test_the_link_checker_finds_a_missing_file_and_a_missing_heading(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    (tmp_path / "there.md").write_text("# A heading, with: punctuation\n\n## Twice\n\n## Twice\n")
    page = tmp_path / "page.md"
    page.write_text("[ok](there.md#a-heading-with-punctuation) [ok2](there.md#twice-1) ![img](gone.png)\n"
                    "[bad anchor](there.md#nope) <a href=\"missing/file.txt\">x</a> [web](https://example.org/x)\n"
                    "`[not a link](nowhere.md)`\n```\n[in code](nowhere2.md)\n```\n")
    assert broken_links(page) == ["gone.png: no such file", "there.md#nope: no heading with the anchor #nope in "
                                  "there.md", "missing/file.txt: no such file"]


@pytest.mark.parametrize("page", LINKED_PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(page):
    assert broken_links(page) == []


def test_pending_pages_are_still_pending():
    arrived = sorted(p for p in PENDING_PAGES if (ROOT / p).exists())
    assert not arrived, f"these pages exist now: remove them from PENDING_PAGES so their links are checked: {arrived}"


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


def test_the_first_screen_says_what_it_is_for_how_to_run_it_and_shows_a_report():
    first = "\n".join(README.read_text(encoding="utf-8").splitlines()[:40])
    lowered = first.lower()
    # purpose and readers
    assert "inference cost" in lowered and "engineer" in lowered and "finance" in lowered and "auditor" in lowered
    # the two commands, how long they take, where the result lands
    assert re.search(r"^make run\b", first, re.M) and re.search(r"^make test\b", first, re.M)
    assert re.search(r"make run`?\s+took\s+(a\s+median\s+of\s+)?[\d.]+\s+s", first)
    assert re.search(r"make test`?\s+(took\s+)?[\d]+\s+min", first)
    assert "outputs/<run_id>/report.html" in first
    # a picture of a real report, rendered from a run
    images = [t for t in links(first) if t.endswith(".png")]
    assert images, "no report picture in README's first 40 lines"
    width, height = png_size(ROOT / images[0])
    assert width >= 1000 and height >= 800
    # where to go next
    for page in ("docs/bring-your-model.md", "docs/gpu.md", "docs/fleet.md", "docs/triton.md", "docs/ledger.md",
                 "docs/prospectus.md"):
        assert page in first, page


def test_every_price_row_cites_a_page_a_reader_can_open_and_a_source_in_the_repository():
    import csv

    with open(ROOT / "data" / "prices.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert rows
    for row in rows:
        assert re.match(r"https://[\w.-]+\.\w+/", row["page"]), f"{row['id']}: no public page to check the price on"
        assert row["as_of"], f"{row['id']}: no date"
        cited = re.findall(r"(data/[\w./-]+\.md)#([\w-]+)", row["source"])
        assert cited, f"{row['id']}: its source names no file of the repository"
        for path, anchor in cited:
            assert anchor in github_anchors((ROOT / path).read_text(encoding="utf-8")), f"{row['id']}: {path}#{anchor}"
