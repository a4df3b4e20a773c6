"""Importers of real word datasets into the htraug collection format (docs/DESIGN.md §4.2).

Formats:
- `rimes`: RIMES ICDAR 2011 word level: ground-truth files with lines `image_path label` (UTF-8,
  possibly with a BOM); the label is everything after the first space. Paths are relative to the
  ground-truth file's folder (or to ROOT).
- `iam`: IAM `words.txt` (`id status graylevel x y w h tag transcription`); `err` segmentations
  are skipped, as are empty or unreadable images (the known-broken ones); `forms.txt`, when
  present, gives writer ids.
- `tsv`: a folder with TSV files `image_path<TAB>transcription[<TAB>writer]`.
- `khatt`: images with a same-name `.txt` transcription next to each (UTF-8 or Windows-1256).
- `madcat`: OpenHaRT/MADCAT XML: `token-image` elements (with `point x= y=` polygons) give word
  boxes, `token` elements give the word (`source` text) and point at boxes through
  `token-image-ref ref_id=`; the page image has the XML file's stem.

Originals are stored as grey PNG without resizing (the packed cache preprocesses them). Splits come
from `lists` (SPLIT -> list file) or folder names, otherwise from a seeded split by writer
(or document) groups. Whitespace inside a transcription becomes `space_symbol`, since alphabets
have no whitespace. Any bad input is a one-line UserError naming file:line, and nothing is written.

Layout: `common` (options, samples, constants and the helpers the readers share), one module per
format (`rimes`, `iam`, `tsv`, `khatt`, `madcat`), `collection` (writing the images into the
collection) and `pipeline` (`import_dataset`: checks, reader, labels, alphabet, splits, write).
"""
from __future__ import annotations

from .common import FORMATS
from .pipeline import import_dataset

__all__ = ["FORMATS", "import_dataset"]
