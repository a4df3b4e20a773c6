"""`madcat`: OpenHaRT/MADCAT XML word boxes and words over a page image."""
from __future__ import annotations

from pathlib import Path
import xml.etree.ElementTree as ET

from ..errors import UserError, located
from .common import IMAGE_EXTENSIONS, ImportConfig, Sample, Scan, _split_from_name


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def read_madcat(root: Path, cfg: ImportConfig) -> Scan:
    """OpenHaRT/MADCAT XML: word boxes from token-image polygons, words from token/source."""
    xmls = [root] if root.is_file() else sorted(root.rglob("*.xml"))
    if not xmls:
        raise UserError(f"{root}: no .xml files found")
    samples = []
    for xml_path in xmls:
        samples.extend(_madcat_file(xml_path, root if root.is_dir() else root.parent))
    return Scan(samples)


def _parse_xml(path: Path) -> tuple[ET.Element, dict]:
    """Parse an XML file with expat; returns the root element and element -> source line."""
    from xml.parsers import expat

    builder = ET.TreeBuilder()
    lines: dict[ET.Element, int] = {}
    parser = expat.ParserCreate(namespace_separator="}")

    def start(tag, attrs):
        lines[builder.start(tag, attrs)] = parser.CurrentLineNumber

    parser.StartElementHandler = start
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(path.read_bytes(), True)
        root = builder.close()
    except expat.ExpatError as exc:
        raise located(path, exc.lineno, f"malformed XML ({expat.ErrorString(exc.code)})") from None
    except AssertionError:
        raise located(path, None, "malformed XML (no root element)") from None
    return root, lines


def _madcat_file(xml_path: Path, root: Path) -> list[Sample]:
    tree, lines = _parse_xml(xml_path)
    boxes: dict[str, tuple[int, int, int, int]] = {}
    writer, document = None, None
    for el in tree.iter():
        tag = _local(el.tag)
        if tag == "writer" and writer is None:
            writer = el.get("id")
        elif tag == "document" and document is None:
            document = el.get("id")
        elif tag == "token-image":
            pts = [(p.get("x"), p.get("y")) for p in el if _local(p.tag) == "point"]
            try:
                xs, ys = [int(float(x)) for x, _ in pts], [int(float(y)) for _, y in pts]
            except (TypeError, ValueError):
                raise located(xml_path, lines.get(el), f"token-image {el.get('id')}: point without numeric x/y") from None
            if not xs:
                raise located(xml_path, lines.get(el), f"token-image {el.get('id')}: no points")
            boxes[el.get("id")] = (min(xs), min(ys), max(xs) + 1, max(ys) + 1)
    image = next((p for ext in IMAGE_EXTENSIONS for p in (xml_path.with_suffix(ext),
                  xml_path.parent / "images" / f"{xml_path.stem}{ext}", root / "images" / f"{xml_path.stem}{ext}")
                  if p.is_file()), xml_path.with_suffix(".tif"))
    samples = []
    for el in tree.iter():
        if _local(el.tag) != "token":
            continue
        source = next((c for c in el if _local(c.tag) == "source"), None)
        refs = [c.get("ref_id") or c.get("ref-id") or c.get("ref") for c in el if _local(c.tag) == "token-image-ref"]
        text = (source.text if source is not None else el.text) or ""
        if not refs:
            raise located(xml_path, lines.get(el), f"token {el.get('id')}: no token-image-ref")
        try:
            bs = [boxes[r] for r in refs]
        except KeyError as exc:
            raise located(xml_path, lines.get(el), f"token {el.get('id')}: unknown token-image {exc.args[0]!r}") from None
        box = (min(b[0] for b in bs), min(b[1] for b in bs), max(b[2] for b in bs), max(b[3] for b in bs))
        samples.append(Sample((xml_path, lines.get(el)), image, text, writer or document or xml_path.stem,
                              _split_from_name(xml_path.relative_to(root).parent) if xml_path.is_relative_to(root) else None,
                              box))
    return samples
