"""`madcat`: OpenHaRT / LDC MADCAT Arabic pages as distributed.

Each release (LDC2012T15, LDC2013T09, LDC2013T15, ...) holds `data/madcat/<base>.madcat.xml`
beside `data/images/<base>.tif`. In the XML, `<zone>` elements (text lines) contain
`<token-image id=...>` elements whose `<point x= y=>` children outline a word on the page; the
text layer's `<segment>` elements contain `<token id=... ref_id=...>` elements whose `<source>`
child is the word and whose `ref_id` attribute names the word's token-image. `<writer id=...>`
names the scribe. Every token becomes one word image, cropped from the page to the bounding box of
its token-image polygon(s) — the word segmentation the dataset provides; lines are not offered.

Splits come from list files with one page per line (`<base>.madcat.xml [scribe]`, e.g. the
`madcat.{train,dev,test}.raw.lineid` files public recipes use): `--list SPLIT=FILE`, or files
ending in `.lineid` under ROOT whose names say their split; pages in no list are excluded.
Otherwise a seeded split by writer. Arabic text is NFKC-normalised by default, which maps
presentation forms to letters.
"""
from __future__ import annotations

from pathlib import Path
import re
from xml.parsers import expat
import xml.etree.ElementTree as ET

from ..errors import UserError
from .common import IMAGE_EXTENSIONS, Sample, list_path, read_id_lists, split_from_name, walk_files
from .options import ImportOptions
from .policy import BadRecords

_LDC_WRITER = re.compile(r"_(LDC\d+)$")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _xml_files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    files = [p for p in walk_files(root, (".xml",)) if p.name.lower().endswith(".madcat.xml")]
    files = files or walk_files(root, (".xml",))
    if not files:
        raise UserError(f"{root}: no .madcat.xml files found (expected data/madcat/<page>.madcat.xml)")
    return files


def _lists(root: Path, opts: ImportOptions) -> dict[str, str]:
    if opts.lists:
        return read_id_lists(root, [(list_path(root, p), s) for s, p in opts.lists.items()])
    if root.is_file():
        return {}
    files = []
    for p in walk_files(root, (".lineid",)):
        split = split_from_name(Path(p.name), opts.split_map)
        if split is not None:
            files.append((p, split))
    return read_id_lists(root, files)


def page_base(xml_path: Path) -> str:
    name = xml_path.name
    return name[: -len(".madcat.xml")] if name.lower().endswith(".madcat.xml") else xml_path.stem


def page_image(xml_path: Path, root: Path, opts: ImportOptions) -> Path:
    """`images/<base>.tif` beside the XML's `madcat/` folder (or in --images-dir, or beside the XML)."""
    base = page_base(xml_path)
    given = opts.given_path("images_dir")
    folders = [list_path(root, given)] if given else \
        [xml_path.parent.parent / "images", xml_path.parent / "images", xml_path.parent]
    names = [f"{base}{ext}" for ext in (".tif", ".tiff", ".png", ".jpg")] + \
            [f"{xml_path.stem}{ext}" for ext in IMAGE_EXTENSIONS]
    for folder in folders:
        for n in names:
            if (folder / n).is_file():
                return folder / n
    return folders[0] / names[0]


def read_madcat(root: Path, opts: ImportOptions, bad: BadRecords) -> list[Sample]:
    base_root = root if root.is_dir() else root.parent
    split_of = _lists(root, opts)
    samples = []
    for xml_path in _xml_files(root):
        base = page_base(xml_path)
        split = None
        if split_of:
            split = split_of.get(base) or split_of.get(xml_path.stem)
            if split is None:
                bad.excluded((xml_path, None), "not_in_lists", f"page {base}")
                continue
        elif xml_path.is_relative_to(base_root):
            split = split_from_name(xml_path.relative_to(base_root).parent, opts.split_map)
        samples.extend(_page(xml_path, page_image(xml_path, root, opts), split, bad))
    return samples


def _parse_xml(path: Path) -> tuple[ET.Element, dict]:
    """Parse an XML file with expat; returns the root element and element → source line."""
    builder = ET.TreeBuilder()
    lines: dict[ET.Element, int] = {}
    parser = expat.ParserCreate(namespace_separator="}")

    def start(tag, attrs):
        lines[builder.start(tag, attrs)] = parser.CurrentLineNumber

    parser.StartElementHandler = start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    parser.Parse(path.read_bytes(), True)
    return builder.close(), lines


def _page(xml_path: Path, image: Path, split: str | None, bad: BadRecords) -> list[Sample]:
    try:
        tree, lines = _parse_xml(xml_path)
    except expat.ExpatError as exc:
        bad.bad((xml_path, exc.lineno), "malformed_xml", f"malformed XML ({expat.ErrorString(exc.code)})")
        return []
    except AssertionError:   # no root element
        bad.bad((xml_path, None), "malformed_xml", "malformed XML (no root element)")
        return []
    boxes: dict[str, tuple[int, int, int, int] | None] = {}
    writer = document = None
    has_segments = False
    for el in tree.iter():
        tag = _local(el.tag)
        if tag == "writer" and writer is None:
            writer = el.get("id")
        elif tag == "document" and document is None:
            document = el.get("id")
        elif tag == "segment":
            has_segments = True
        elif tag == "token-image":
            boxes[el.get("id")] = _box(el)
    if not writer:
        m = _LDC_WRITER.search(page_base(xml_path))
        writer = m.group(1) if m else (document or page_base(xml_path))
    tokens = [el for seg in tree.iter() if _local(seg.tag) == "segment" for el in seg.iter() if _local(el.tag) == "token"] \
        if has_segments else [el for el in tree.iter() if _local(el.tag) == "token"]
    samples = []
    for el in tokens:
        where = (xml_path, lines.get(el))
        tid = el.get("id")
        source = next((c for c in el if _local(c.tag) == "source"), None)
        text = "".join(source.itertext()) if source is not None else (el.text or "")
        refs = (el.get("ref_id") or "").split()
        refs += [c.get("ref_id") or c.get("ref-id") or c.get("ref") for c in el if _local(c.tag) == "token-image-ref"]
        refs = [r for r in refs if r]
        if not refs:
            bad.bad(where, "no_word_box", f"token {tid}: no ref_id naming its token-image")
            continue
        unknown = [r for r in refs if r not in boxes]
        if unknown:
            bad.bad(where, "unknown_word_box", f"token {tid}: unknown token-image {unknown[0]!r}")
            continue
        bs = [boxes[r] for r in refs]
        if any(b is None for b in bs):
            bad.bad(where, "no_word_box", f"token {tid}: token-image {refs[bs.index(None)]!r} has no numeric points")
            continue
        box = (min(b[0] for b in bs), min(b[1] for b in bs), max(b[2] for b in bs), max(b[3] for b in bs))
        samples.append(Sample(where, image, text, writer, split, box))
    return samples


def _box(el: ET.Element) -> tuple[int, int, int, int] | None:
    """The bounding box (x0, y0, x1, y1), end-exclusive, of a token-image's points."""
    try:
        pts = [(int(float(p.get("x"))), int(float(p.get("y")))) for p in el.iter() if _local(p.tag) == "point"]
    except (TypeError, ValueError):
        return None
    if not pts:
        return None
    xs, ys = [x for x, _ in pts], [y for _, y in pts]
    return min(xs), min(ys), max(xs) + 1, max(ys) + 1
