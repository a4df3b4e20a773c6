"""The policy for bad records (`--on-bad skip|error`) and the import report.

A *bad* record is one the data should not contain: a malformed ground-truth line or XML file, a
missing or unreadable image, an empty or out-of-alphabet transcription, a word box that points
nowhere or lies outside its page, an image too wide for the canvas. In `skip` mode it is left out
and counted; in `error` mode the import stops with a one-line error naming its file and line
(too-wide images are then kept and counted, as the packed cache drops them at training time).

An *excluded* record is one the dataset's own metadata leaves out (IAM's `err` word
segmentations, entries of no --list split, images without a ground-truth file); it is counted in
both modes and never an error.

Every record left out is a row of `import_report.tsv` (file, line, reason, detail), written into
the collection with it; `summary_lines` gives one line per reason for stderr.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import located
from ..files import atomic_write_text
from .common import relative_to_root

MODES = ("skip", "error")
REPORT = "import_report.tsv"

# reason → what it means (the order of the summary)
REASONS = {
    "malformed_line": "ground-truth line not of the expected form",
    "malformed_xml": "XML file that does not parse",
    "missing_image": "image file not found",
    "unreadable_image": "image that cannot be decoded, or is empty",
    "empty_transcription": "empty transcription",
    "out_of_alphabet": "characters outside the alphabet",
    "no_word_box": "token without a usable word box",
    "unknown_word_box": "token whose ref_id names no token-image",
    "box_outside_page": "word box outside its page image",
    "too_wide": "wider than the canvas once resized to its height",
    "err_segmentation": "word segmentation flagged 'err' by the dataset",
    "not_in_lists": "in none of the split list files",
    "no_transcription": "image without a ground-truth file",
}
EXCLUDED = frozenset({"err_segmentation", "not_in_lists", "no_transcription"})


@dataclass(frozen=True)
class Record:
    """One record left out of the collection."""

    file: str
    line: int | None
    reason: str
    detail: str


class BadRecords:
    """Collects the records an import leaves out, or stops at the first bad one (error mode)."""

    def __init__(self, mode: str, root: Path):
        if mode not in MODES:
            raise ValueError(f"on_bad must be one of {MODES}, got {mode!r}")
        self.mode = mode
        self.root = Path(root)
        self.records: list[Record] = []

    def bad(self, where: tuple[Path, int | None], reason: str, detail: str) -> None:
        """A bad record: an error naming file:line in error mode, a counted skip otherwise."""
        if reason not in REASONS or reason in EXCLUDED:
            raise ValueError(f"not a bad-record reason: {reason!r}")
        if self.mode == "error":
            raise located(where[0], where[1], f"{detail} (--on-bad skip leaves such records out and reports them)")
        self._add(where, reason, detail)

    def excluded(self, where: tuple[Path, int | None], reason: str, detail: str) -> None:
        """A record the dataset's metadata leaves out: counted and reported in both modes."""
        if reason not in EXCLUDED:
            raise ValueError(f"not an exclusion reason: {reason!r}")
        self._add(where, reason, detail)

    def skip_too_wide(self, where: tuple[Path, int | None], detail: str) -> None:
        """Record a too-wide image skipped (skip mode only; error mode keeps it)."""
        self._add(where, "too_wide", detail)

    def _add(self, where, reason: str, detail: str) -> None:
        self.records.append(Record(relative_to_root(where[0], self.root), where[1], reason, detail))

    def counts(self) -> dict[str, int]:
        """Records left out per reason, in the order of REASONS."""
        seen: dict[str, int] = {}
        for r in self.records:
            seen[r.reason] = seen.get(r.reason, 0) + 1
        return {k: seen[k] for k in REASONS if k in seen}

    def summary_lines(self, report_path: Path | None = None) -> list[str]:
        """One line per reason: count, meaning, and where the first such record is."""
        first: dict[str, Record] = {}
        for r in self.records:
            first.setdefault(r.reason, r)
        lines = []
        for reason, n in self.counts().items():
            r = first[reason]
            at = f"{r.file}:{r.line}" if r.line is not None else r.file
            verb = "excluded" if reason in EXCLUDED else "skipped"
            lines.append(f"{verb} {n} {reason}: {REASONS[reason]} (first: {at})")
        if lines and report_path is not None:
            lines.append(f"every record left out is listed in {report_path}")
        return lines

    def write_tsv(self, path: Path) -> None:
        """import_report.tsv: a header and one row per record left out (tabs and newlines in
        details become spaces)."""
        def clean(text) -> str:
            return " ".join(str(text).split())

        rows = ["file\tline\treason\tdetail\n"]
        rows += [f"{clean(r.file)}\t{'' if r.line is None else r.line}\t{r.reason}\t{clean(r.detail)}\n"
                 for r in self.records]
        atomic_write_text(path, "".join(rows))
