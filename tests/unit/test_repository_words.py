"""The repository speaks of the product: no words about how it was developed.

A phrase that tells the history of the work (numbered work periods, machines held for a while,
numbered command runs, the tools of the environment it was written in) says nothing a user can check; a date, a
machine and a commit do. This scans the text of every file a user reads or runs, and every file name under
benchmarks/, and names each hit with its file and line.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ["README.md", "Makefile", "pyproject.toml", "environment.yml", "docs", "benchmarks", "lib", "tests",
           "notebooks", "data", "params", "scripts", "deploy"]
# what .gitignore keeps out of the repository, plus caches
SKIPPED_DIRS = {".git", ".venv", ".venv-serve", "outputs", "__pycache__", ".pytest_cache", ".ruff_cache",
                ".ipynb_checkpoints", ".whl", "sentence-encoder", "dist"}
BINARY_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".gz", ".tgz", ".zip", ".xlsx", ".onnx", ".pt", ".pth",
                   ".safetensors", ".npz", ".npy", ".sqlite", ".db", ".pyc", ".plan", ".engine"}
THIS_FILE = Path(__file__).resolve()

_ORDINAL = (r"(?:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|eleventh|twelfth|"
            r"thirteenth|fourteenth|fifteenth|\d+(?:st|nd|rd|th))")
_HELD = "le" + "nt|bor" + "rowed"  # assembled, so this file's own lines hold none of the words it looks for
PHRASES: list[tuple[str, re.Pattern]] = [
    ("a numbered work period", re.compile(rf"\b{_ORDINAL}[\s-]+(?:work[\s-]+)?sessions?\b", re.I)),
    ("a numbered work period", re.compile(r"\bsessions?\s+(?:\d+|[ivx]+)\b", re.I)),
    ("a work period", re.compile(r"\b(?:this|that|next|previous|earlier|later|an earlier|a later|each)\s+"
                                 r"(?:work\s+)?session(?:'s)?\b(?!\s*(?:scope|fixture|-scoped))", re.I)),
    ("a work period", re.compile(r"\bsession's\b", re.I)),
    ("a machine held for a while", re.compile(r"\b(?:" + _HELD + r"|lend|lending|loaned)\b", re.I)),
    ("a numbered call", re.compile(r"\bcalls?\s+\d+(?:\s*[–-]\s*\d+)?\b", re.I)),
    ("a numbered call", re.compile(r"(?:^|[/\s`(])call\d+[-_]", re.I)),
    ("a timed call", re.compile(r"\b\d+[\s-]*(?:minute|second|min|s)\s+call\b", re.I)),
    ("a development-environment tool", re.compile(r"\bdevice[\s-]+tool\b|\bdevice-wheels\b|\.\./shared/tools\b",
                                                  re.I)),
    ("a development-environment output folder", re.compile(r"\$OUT\b")),
    ("a development agent", re.compile(r"\b(?:an?|the|other|two|three|four|five)\s+(?:coding\s+)?agents?\b|"
                                       r"\bhelper\s+sessions?\b|\bsubagents?\b", re.I)),
]
NAME_PHRASES = [re.compile(r"(?:^|[/_-])call\d+(?:[-_.]|$)", re.I),
                re.compile(r"(?:^|[/_-])session\d*(?:[-_.]|$)", re.I),
                re.compile(r"(?:^|[/_-])(?:" + _HELD + r")(?:[-_.]|$)", re.I)]
# embedded images in rendered reports: base64 text, not words
DATA_URI = re.compile(r"data:[\w/+.-]+;base64,[A-Za-z0-9+/=\s]+")


def development_history_phrases(text: str) -> list[tuple[str, str]]:
    """(kind, the matched words) for each development-history phrase in `text`."""
    text = DATA_URI.sub("", text)
    return [(kind, m.group(0).strip()) for kind, pattern in PHRASES for m in pattern.finditer(text)]


def development_history_name(path: str) -> bool:
    return any(p.search(path) for p in NAME_PHRASES)


def scanned_files() -> list[Path]:
    files = []
    for top in SCANNED:
        start = ROOT / top
        if start.is_file():
            files.append(start)
            continue
        for path in sorted(start.rglob("*")):
            rel = path.relative_to(ROOT)
            if any(part in SKIPPED_DIRS or part.endswith(".egg-info") for part in rel.parts):
                continue
            if path.is_file():
                files.append(path)
    return files


# The planted phrases are assembled from pieces, so that this file does not itself hold the words it forbids.
_W = {"s": "ses" + "sion", "c": "ca" + "ll", "l": "le" + "nt", "b": "bor" + "rowed", "a": "age" + "nts",
      "d": "dev" + "ice", "h": "hel" + "per"}


@pytest.mark.parametrize("planted", [p.format(**_W) for p in [
    "Measured in the ninth {s} on a fresh clone.",
    "the third {s}'s run",
    "On the {l} H100, 2026-11-25.",
    "two machines {b} for an hour",
    "{c} 3 ran out of time",
    "{c}s 4–6 resumed from the cache",
    "benchmarks/results/gpu-2026-11-26d/{c}7-freezing.log",
    "to fit a 10-minute {c}",
    "wheels from ../shared/tools/{d}-wheels",
    "ask the {d} tool for an H100",
    "tar -czf \"$OUT/run.tar.gz\"",
    "as in {s} 2",
    "this {s}'s {d} time",
    "four {a} share the machine",
    "a {h} {s} wrote this",
]])
def test_the_checker_finds_a_planted_development_phrase(planted):
    assert development_history_phrases(planted), planted


@pytest.mark.parametrize("ordinary", [
    "sess = ort.InferenceSession(path, providers=['CPUExecutionProvider'])",
    '@pytest.fixture(scope="session")',
    "Export + calibrate of the digits model, once per session, through lib.",
    "start_new_session=True",
    "an equivalent model; excellent agreement; silently cut",
    "the batcher calls the engine 3 times; call_count == 3",
    "recall 0.95 at 2 ms; a 10 s confirmation run",
    "2 x NVIDIA H200 (143,771 MiB), 32-core host, 2026-11-26, commit f88769d",
    "/tmp/ray/session_2026-11-26_03-16-34_427904_22554/runtime_resources",
    "pytest's session scope; this session fixture runs the chain",
    "RESULTS_DIR=${RESULTS_DIR:-/tmp/out}",
    'src="data:image/png;base64,iVBORw0KGgoAAA+{l}/{b}+{c}3-x==" alt="plot"'.format(**_W),
])
def test_the_checker_leaves_ordinary_words_alone(ordinary):
    assert development_history_phrases(ordinary) == []


def test_the_name_check_finds_numbered_calls_and_leaves_descriptive_names():
    assert development_history_name("benchmarks/results/gpu-2026-11-26e/{c}5-default.json".format(**_W))
    assert development_history_name("benchmarks/results/x/{l}-h100.log".format(**_W))
    assert not development_history_name("benchmarks/results/gpu-2026-11-26e/h100-default-largest-first.json")
    assert not development_history_name("tests/unit/test_recall.py")


def test_no_file_tells_how_the_repository_was_developed():
    files = scanned_files()
    assert len(files) > 100 and any(f.name == "RESULTS.md" for f in files)  # the scan reaches the repository
    hits = []
    for path in files:
        rel = path.relative_to(ROOT).as_posix()
        if development_history_name(rel):
            hits.append(f"{rel}: file name")
        if path == THIS_FILE or path.suffix.lower() in BINARY_SUFFIXES:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for kind, words in development_history_phrases(text):
            line = text[: text.find(words)].count("\n") + 1 if words in text else "?"
            hits.append(f"{rel}:{line}: {kind}: {words!r}")
    assert not hits, ("say what the product does, with dates, machines and commits, not how it was made:\n"
                      + "\n".join(hits))
