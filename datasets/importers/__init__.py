"""Importers of real handwriting datasets, read as they are distributed, into the htraug
collection format (docs/DESIGN.md §4.2).

Formats (each module's docstring describes the published layout it reads):
- `rimes`: RIMES ICDAR 2011 word level: `groundtruth_training_icdar2011.txt`,
  `ground_truth_validation_icdar2011.txt`, `grount_truth_test_icdar2011.txt` (UTF-8 with a BOM,
  `path word` lines) with their paths relative to `trainingsnippets_icdar/training_WR/`,
  `validationsnippets_icdar/testdataset_ICDAR/` and `data_test/`.
- `iam`: IAM `ascii/words.txt` (comment header, `err` segmentations excluded) with `words/`, or
  `--level line` `ascii/lines.txt` with `lines/`; writers from `forms.txt`; the official
  `trainset.txt`/`validationset1.txt`/`validationset2.txt`/`testset.txt` splits when present.
- `tsv`: TSV files `image_path<TAB>transcription[<TAB>writer]`.
- `khatt`: KHATT line images (`LineImages…/…/{Train,Validate,Test}`) with the parallel ground-truth
  tree (`GroundTruth…/…TextUnicodeTruthValues…`, commonly Windows-1256); line level.
- `madcat`: OpenHaRT/LDC MADCAT `madcat/<page>.madcat.xml` beside `images/<page>.tif`; every
  `<token ref_id=…>` is cropped from the page to its `<token-image>` box.

Originals are stored as grey PNG without resizing (the packed cache preprocesses them). Bad
records (missing or unreadable images, malformed lines, empty or out-of-alphabet transcriptions,
too-wide images) are skipped and listed in `import_report.tsv` (`--on-bad skip`, the default of
the real-dataset formats) or stop the import with a one-line error naming file:line
(`--on-bad error`, the default of `tsv`). Nothing is written unless the whole import succeeds.

Layout: `common` (samples, constants, file and split helpers), `options` (`ImportOptions`, the one
description of every option and flag), `policy` (bad records and the report), `text`
(normalisation), one module per format, `collection` (writing the images) and `pipeline`
(`import_dataset`: reader, labels, alphabet, splits, write).
"""
from __future__ import annotations

from .common import FORMATS
from .options import ImportOptions, options_from_args
from .pipeline import import_collection, import_dataset

__all__ = ["FORMATS", "ImportOptions", "import_collection", "import_dataset", "options_from_args"]
