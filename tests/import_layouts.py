"""Builders of small dataset trees laid out as RIMES, IAM, KHATT and OpenHaRT/MADCAT are distributed.

The layouts follow the datasets' published descriptions and the way public HTR projects'
data-preparation code reads them (described in words in each builder); nothing here is derived
from htraug's importers. Each builder returns a `Layout`: the records an import must keep (split,
label, writer, image size) and the bad records it must report (file, line, reason), so the tests
compare the importer's output with what was written, not with what the importer would do.

The builders also make the 10k-image throughput fixtures (`python -m ...` is not needed:
`build_<format>(root, n=10000)`); images are tiny grey pictures, see `IMAGE_HEIGHT`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

IMAGE_HEIGHT = 24          # word images: 24 px high, 7 px per character + 6 (so most fit a 4:1 canvas)
FRENCH_WORDS = ["Monsieur", "Madame", "je", "vous", "prie", "d'agréer", "l'expression", "mes", "salutations",
                "distinguées", "résiliation", "contrat", "numéro", "12/03/2007", "à", "été", "reçu", "facture",
                "EDF", "Assurance", "crédit", "où", "Noël", "cœur", "Lyon", "15,50€", "-", "."]
ENGLISH_WORDS = ["A", "MOVE", "to", "stop", "Mr.", "Gaitskell", "from", "nominating", "any", "more", "Labour",
                 "life", "Peers", "is", "to", "be", "made", "at", "a", "meeting", "of"]
ARABIC_WORDS = ["كتاب", "مدرسة", "القلم", "جميل", "في", "من", "إلى", "على", "قال", "ذهب", "الطالب", "بيت",
                "سماء", "مؤسسة", "شيء", "ماء", "عربي", "يوم", "سنة", "كبير"]


@dataclass
class Layout:
    """What was written: the records to keep and the bad ones (file relative to root, line, reason)."""

    root: Path
    kept: list[dict] = field(default_factory=list)      # {"split", "label", "writer", "size": (w, h)}
    bad: list[tuple[str, int | None, str]] = field(default_factory=list)

    def count(self, split: str | None = None, level: str = "word") -> int:
        return sum(1 for r in self.kept if (split is None or r["split"] == split) and r.get("level", "word") == level)

    def records(self, level: str = "word") -> list[dict]:
        return [r for r in self.kept if r.get("level", "word") == level]


def word_image(path: Path, n_chars: int, seed: int, height: int = IMAGE_HEIGHT, width: int | None = None,
               fmt: str | None = None) -> tuple[int, int]:
    """A grey word picture: light paper with dark strokes; returns (width, height)."""
    rng = np.random.default_rng(seed)
    w = width or 6 + 7 * max(1, n_chars)
    img = np.full((height, w), 235, np.uint8) + rng.integers(0, 20, size=(height, w), dtype=np.uint8)
    for _ in range(2 * max(1, n_chars)):
        x, y = int(rng.integers(0, w - 2)), int(rng.integers(2, height - 3))
        img[y:y + 3, x:x + 2] = int(rng.integers(0, 90))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img, mode="L").save(path, format=fmt)
    return w, height


def corrupt_image(path: Path) -> None:
    """A file with an image name and a PNG signature but no decodable image."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR truncated")


# ---------------------------------------------------------------------------------------------
# RIMES 2011 word level
# ---------------------------------------------------------------------------------------------

RIMES_FILES = {"train": ("groundtruth_training_icdar2011.txt", "trainingsnippets_icdar/training_WR"),
               "val": ("ground_truth_validation_icdar2011.txt", "validationsnippets_icdar/testdataset_ICDAR"),
               "test": ("grount_truth_test_icdar2011.txt", "data_test")}
RIMES_DICTIONARY = "test_dictionary_task_wr_icdar_2011.txt"


def build_rimes(root: Path, n: int = 30, bad: bool = True, seed: int = 0) -> Layout:
    """RIMES ICDAR 2011 word recognition, as downloaded.

    Published layout: at the top of the download, three ground-truth files — training
    `groundtruth_training_icdar2011.txt`, validation `ground_truth_validation_icdar2011.txt` and test
    `grount_truth_test_icdar2011.txt` (the misspelling is the file's real name) — each UTF-8 with a
    byte-order mark and one `relative/path word` line per snippet, a single space between path and
    word. The paths are relative to the image folders `trainingsnippets_icdar/training_WR/`,
    `validationsnippets_icdar/testdataset_ICDAR/` and `data_test/` (nested `lot_*/…` folders),
    not to the ground-truth file. The download also holds the lexicon of the word task,
    `test_dictionary_task_wr_icdar_2011.txt`, one word per line, which is not ground truth. The
    first line of the training file is known to name a snippet that is not in the archive.

    `n` records per split (train gets 3n); with `bad`, the training file also has the missing first
    image, an unreadable snippet, a word outside the RIMES alphabet (`n°`), a line without a word
    and a blank line; the validation file uses Windows line ends.
    """
    root.mkdir(parents=True, exist_ok=True)
    lay = Layout(root)
    k = 0
    for split, (gt_name, folder) in RIMES_FILES.items():
        lines: list[str] = []
        count = 3 * n if split == "train" else n
        if bad and split == "train":
            lines.append("lot_1/00001_L/00001_L_0_0.png Monsieur")          # the missing first image
            lay.bad.append((gt_name, 1, "missing_image"))
        for i in range(count):
            word = FRENCH_WORDS[k % len(FRENCH_WORDS)]
            rel = f"lot_{1 + i // 40}/{k:05d}_L/{k:05d}_L_{i % 7}_{i % 3}.png"
            k += 1
            size = word_image(root / folder / rel, len(word), seed * 100003 + k)
            lines.append(f"{rel} {word}")
            lay.kept.append({"split": split, "label": word, "writer": None, "size": size, "rel": f"{folder}/{rel}"})
            if bad and split == "train" and i == count // 2:
                bad_rel = f"lot_9/{k:05d}_L/{k:05d}_L_0_0.png"
                corrupt_image(root / folder / bad_rel)
                lines.append(f"{bad_rel} contrat")
                lay.bad.append((gt_name, len(lines), "unreadable_image"))
                word_image(root / folder / f"lot_9/{k:05d}_L/{k:05d}_L_0_1.png", 2, k)
                lines.append(f"lot_9/{k:05d}_L/{k:05d}_L_0_1.png n°")
                lay.bad.append((gt_name, len(lines), "out_of_alphabet"))
                lines.append(f"lot_9/{k:05d}_L/{k:05d}_L_0_2.png")
                lay.bad.append((gt_name, len(lines), "malformed_line"))
                lines.append("")
        end = "\r\n" if (bad and split == "val") else "\n"
        (root / gt_name).write_bytes(("\ufeff" + end.join(lines) + end).encode("utf-8"))
    (root / RIMES_DICTIONARY).write_text("\n".join(sorted(set(FRENCH_WORDS))) + "\n", encoding="utf-8")
    return lay


# ---------------------------------------------------------------------------------------------
# IAM
# ---------------------------------------------------------------------------------------------

IAM_WORDS_HEADER = """#--- words.txt ---------------------------------------------------------------#
#
# iam database word information
#
# format: a01-000u-00-00 ok 154 1 408 768 27 51 AT A
#
#     a01-000u-00-00  -> word id for line 00 in form a01-000u
#     ok              -> result of word segmentation
#                            ok: word was correctly
#                            er: segmentation of word can be bad
#
#     154             -> graylevel to binarize the line containing this word
#     1               -> number of components for this word
#     408 768 27 51   -> bounding box around this word in x,y,w,h format
#     AT              -> the grammatical tag for this word, see the
#                        file tagset.txt for an explanation
#     A               -> the transcription for this word
#
"""
IAM_FORMS_HEADER = """#--- forms.txt ---------------------------------------------------------------#
#
# iam database form information
#
# format: a01-000u 000 2 prt 7 5 52 36
#
"""
IAM_SPLIT_FOLDER = "largeWriterIndependentTextLineRecognitionTask"


def build_iam(root: Path, n_forms: int = 11, lines_per_form: int = 2, words_per_line: int = 4,
              bad: bool = True, split_files: bool = True, seed: int = 0) -> Layout:
    """The IAM Handwriting Database, as its archives unpack.

    Published layout: `ascii/words.txt` opens with a block of `#` comment lines describing its
    format, then one line per word: word id `a01-000u-00-00`, segmentation result `ok` or `err`,
    grey level, number of components, bounding box `x y w h`, grammatical tag and the
    transcription — ten fields separated by single spaces. `ascii/lines.txt` has one line per text
    line (id `a01-000u-00`, result, grey level, components, box, then the words joined by `|`),
    `ascii/forms.txt` (also with a comment header) gives each form id its writer id. Word images
    are `words/a01/a01-000u/a01-000u-00-00.png`, line images `lines/a01/a01-000u/a01-000u-00.png`.
    Two word images of the release are known to be empty files. The writer-independent line task
    ships `trainset.txt`, `validationset1.txt`, `validationset2.txt` and `testset.txt`, one line id
    per line (here in the folder `largeWriterIndependentTextLineRecognitionTask/`).

    Forms go, by writer, to train, val (set 1, then set 2) and test in turn; one form is in no
    split file. With `bad`, one word of each form is segmented `err` and one image is an empty file.
    """
    (root / "ascii").mkdir(parents=True, exist_ok=True)
    lay = Layout(root)
    words_txt = IAM_WORDS_HEADER.rstrip("\n").split("\n")
    lines_txt, forms_txt = [], IAM_FORMS_HEADER.rstrip("\n").split("\n")
    lines_txt.append("#--- lines.txt ---\n#\n# format: a01-000u-00 ok 154 19 408 746 1661 89 A|MOVE|to|stop|Mr.|Gaitskell|from\n#")
    split_ids: dict[str, list[str]] = {"trainset.txt": [], "validationset1.txt": [], "validationset2.txt": [],
                                       "testset.txt": []}
    cycle = ["trainset.txt", "trainset.txt", "validationset1.txt", "validationset2.txt", "testset.txt"]
    k = 0
    for fi in range(n_forms):
        prefix = f"{'abcdefghr'[fi % 9]}{fi // 9 + 1:02d}"
        form = f"{prefix}-{fi:03d}{'u' if fi % 2 else ''}"
        writer = f"{fi // 2 + 100:03d}" if fi < n_forms - 1 else f"{fi + 200:03d}"
        forms_txt.append(f"{form} {writer} 2 prt {lines_per_form} {lines_per_form} {lines_per_form * words_per_line} 0")
        listed = fi < n_forms - 1 or not split_files
        split_file = cycle[(fi // 2) % len(cycle)]
        split = {"trainset.txt": "train", "validationset1.txt": "val", "validationset2.txt": "val",
                 "testset.txt": "test"}[split_file]
        for li in range(lines_per_form):
            line_id = f"{form}-{li:02d}"
            if listed:
                split_ids[split_file].append(line_id)
            words = []
            for wi in range(words_per_line):
                word = ENGLISH_WORDS[(k + wi) % len(ENGLISH_WORDS)]
                k += 1
                wid = f"{line_id}-{wi:02d}"
                status = "err" if bad and wi == 1 and li == 0 else "ok"
                path = root / "words" / prefix / form / f"{wid}.png"
                if bad and fi == 3 and li == 1 and wi == 2:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(b"")                        # the release's empty word images
                    size = None
                else:
                    size = word_image(path, len(word), seed * 7919 + k)
                words_txt.append(f"{wid} {status} 154 1 {100 + 60 * wi} {700 + 90 * li} 50 30 NN {word}")
                words.append(word)
                n = len(words_txt)
                if status == "err":
                    lay.bad.append(("ascii/words.txt", n, "err_segmentation"))
                elif not listed and split_files:
                    lay.bad.append(("ascii/words.txt", n, "not_in_lists"))
                elif size is None:
                    lay.bad.append(("ascii/words.txt", n, "unreadable_image"))
                else:
                    lay.kept.append({"split": split if split_files else None, "label": word, "writer": writer,
                                     "size": size, "level": "word"})
            text = " ".join(words)
            lsize = word_image(root / "lines" / prefix / form / f"{line_id}.png", len(text), seed + k, height=40)
            lines_txt.append(f"{line_id} {'err' if bad and li == 0 else 'ok'} 154 {len(words)} 100 {700 + 90 * li} "
                             f"{lsize[0]} 40 {'|'.join(words)}")
            if listed or not split_files:
                lay.kept.append({"split": split if split_files else None, "label": text, "writer": writer,
                                 "size": lsize, "level": "line"})
    (root / "ascii" / "words.txt").write_text("\n".join(words_txt) + "\n", encoding="utf-8")
    (root / "ascii" / "lines.txt").write_text("\n".join(lines_txt) + "\n", encoding="utf-8")
    (root / "ascii" / "forms.txt").write_text("\n".join(forms_txt) + "\n", encoding="utf-8")
    if split_files:
        (root / IAM_SPLIT_FOLDER).mkdir(exist_ok=True)
        for name, ids in split_ids.items():
            (root / IAM_SPLIT_FOLDER / name).write_text("".join(f"{i}\n" for i in ids), encoding="utf-8")
    return lay


# ---------------------------------------------------------------------------------------------
# KHATT
# ---------------------------------------------------------------------------------------------

KHATT_SPLITS = {"Train": "train", "Validate": "val", "Test": "test"}


def build_khatt(root: Path, writers_per_split: int = 3, lines_per_writer: int = 4, bad: bool = True,
                seed: int = 0) -> Layout:
    """KHATT (KFUPM Handwritten Arabic TexT) v1.0 line images and ground truth, as unpacked.

    Published layout: `KHATT_v1.0/LineImages_v1.0/FixedTextLineImages/{Train,Validate,Test}/` and
    `…/UniqueTextLineImages/{Train,Validate,Test}/` hold one TIFF per text line, named
    `<writer>_Para<k>_<line>` (`AHTD3A0001_Para1_1.tif`: writer `AHTD3A0001`; paragraph 1 is the
    fixed text every writer copied, 2–3 unique text). The transcriptions are not beside the images
    but in a parallel tree, `KHATT_v1.0/GroundTruth_v1.0/FixedTextUnicodeTruthValues-v1.0/{Train,
    Validate,Test}/` and `…/UniqueTextUnicodeTruthValues-v1.0/…`, one `.txt` per line image with the
    same name, commonly encoded in Windows-1256. The validation folder is `Validate`.

    Most lines are several words long, far wider than a 4:1 word canvas; every writer also has one
    short line (one or two words) that fits it. With `bad`, one image has no ground-truth file, one
    ground truth is UTF-8 with a BOM, one carries diacritics (tashkeel), one presentation forms
    (the lam-alef ligature), and one is empty.
    """
    base = root / "KHATT_v1.0"
    lay = Layout(root)
    k = 0
    wno = 0
    for folder, split in KHATT_SPLITS.items():
        for _ in range(writers_per_split):
            wno += 1
            writer = f"AHTD3A{wno:04d}"
            for li in range(lines_per_writer):
                kind, para = ("Fixed", 1) if li < 2 else ("Unique", 2 + li % 2)
                stem = f"{writer}_Para{para}_{li + 1}"
                n_words = 1 + (li % 2) if li == 0 else 4 + li
                words = [ARABIC_WORDS[(k + j) % len(ARABIC_WORDS)] for j in range(n_words)]
                k += n_words
                text = " ".join(words)
                img = base / "LineImages_v1.0" / f"{kind}TextLineImages" / folder / f"{stem}.tif"
                size = word_image(img, len(text), seed * 104729 + k, height=30, fmt="TIFF")
                gt = base / "GroundTruth_v1.0" / f"{kind}TextUnicodeTruthValues-v1.0" / folder / f"{stem}.txt"
                gt.parent.mkdir(parents=True, exist_ok=True)
                label = text
                if bad and wno == 1 and li == 1:
                    gt.write_bytes(("\ufeff" + text + "\r\n").encode("utf-8"))
                elif bad and wno == 2 and li == 1:
                    gt.write_bytes(("كَتَبَ " + text + "\r\n").encode("cp1256"))   # tashkeel
                    label = "كتب " + text
                    lay.kept.append({"split": split, "label": label, "writer": writer, "size": size,
                                     "gt": gt.relative_to(root).as_posix(), "diacritics": "كَتَبَ " + text})
                    continue
                elif bad and wno == 3 and li == 2:
                    gt.write_bytes(("\ufefb" + "عب " + text).encode("utf-8"))     # presentation form ﻻ
                    label = "لاعب " + text
                elif bad and wno == 4 and li == 3:
                    gt.write_bytes(b"  \r\n")
                    lay.bad.append((gt.relative_to(root).as_posix(), 1, "empty_transcription"))
                    continue
                else:
                    gt.write_bytes((text + "\r\n").encode("cp1256"))
                lay.kept.append({"split": split, "label": label, "writer": writer, "size": size,
                                 "gt": gt.relative_to(root).as_posix()})
        if bad and split == "test":
            orphan = base / "LineImages_v1.0" / "UniqueTextLineImages" / folder / f"AHTD3A{wno:04d}_Para3_9.tif"
            word_image(orphan, 10, 1, height=30, fmt="TIFF")
            lay.bad.append((orphan.relative_to(root).as_posix(), None, "no_transcription"))
    return lay


# ---------------------------------------------------------------------------------------------
# OpenHaRT / MADCAT
# ---------------------------------------------------------------------------------------------

MADCAT_RELEASE = "LDC2012T15"


def _madcat_xml(base: str, writer: str, page: tuple[int, int], zones: list[list[tuple[str, tuple, str]]],
                tokens: list[str]) -> str:
    out = ['<?xml version="1.0" encoding="UTF-8"?>',
           '<madcat xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">',
           f'  <document id="{base}" nsegments="1">',
           f'    <writer id="{writer}" gender="M" age="25"/>',
           f'    <page id="{base}_p1" width="{page[0]}" height="{page[1]}">']
    for zi, zone in enumerate(zones):
        out.append(f'      <zone id="z{zi}" type="line">')
        for ti_id, pts, _ in zone:
            out.append(f'        <token-image id="{ti_id}">')
            out += [f'          <point x="{x}" y="{y}"/>' for x, y in pts]
            out.append("        </token-image>")
        out.append("      </zone>")
    out += ["    </page>", '    <segment id="s0">', "      <source>segment text</source>"]
    out += [f"      {t}" for t in tokens]
    out += ["    </segment>", "  </document>", "</madcat>"]
    return "\n".join(out) + "\n"


def build_madcat(root: Path, n_pages: int = 6, lines_per_page: int = 3, words_per_line: int = 4, bad: bool = True,
                 split_lists: bool = True, seed: int = 0) -> Layout:
    """OpenHaRT / MADCAT Arabic training data (LDC), as unpacked.

    Published layout: a release folder (`LDC2012T15`, `LDC2013T09`, `LDC2013T15`) holds
    `data/madcat/<page>.madcat.xml` beside `data/images/<page>.tif` (the XML's base name without
    `.madcat.xml`, e.g. `arb-NG-2-76513-5612324_2_LDC0009`) and `docs/writing_conditions.tab`.
    In the XML, `<zone>` elements (text lines) contain `<token-image id=…>` word outlines made of
    `<point x=… y=…/>` children; the text layer's `<segment>` elements contain
    `<token id=… ref_id=…>` elements whose `<source>` child is the word and whose `ref_id`
    attribute names its token-image (there is no reference child element); `<writer id=…>` names
    the scribe. Public recipes split pages with list files `madcat.{train,dev,test}.raw.lineid`,
    one `<page>.madcat.xml <scribe>` line per page. Some words are written with Arabic
    presentation forms, which NFKC maps to letters.

    Pages go train, train, dev, test in turn (by list file); one page is in no list. With `bad`:
    a token without `ref_id`, a token whose `ref_id` names no token-image, a box outside the page,
    a page whose image is missing and a page whose XML is truncated.
    """
    rel = root / MADCAT_RELEASE
    (rel / "data" / "madcat").mkdir(parents=True, exist_ok=True)
    (rel / "data" / "images").mkdir(parents=True, exist_ok=True)
    (rel / "docs").mkdir(parents=True, exist_ok=True)
    lay = Layout(root)
    lists = {"train": [], "dev": [], "test": []}
    cycle = ["train", "train", "dev", "test"]
    conditions = []
    k = 0
    rng = np.random.default_rng(seed)
    for pi in range(n_pages):
        writer = f"LDC{(pi // 2) * 7 + 9:04d}"
        base = f"arb-NG-2-{76513 + pi}-{5612324 + 3 * pi}_2_{writer}"
        page_w, page_h = 40 + words_per_line * 70, 30 + lines_per_page * 40
        page = np.full((page_h, page_w), 240, np.uint8) + rng.integers(0, 15, size=(page_h, page_w), dtype=np.uint8)
        zones, tokens = [], []
        listed = pi < n_pages - 1 or not split_lists
        split_name = cycle[pi % len(cycle)]
        split = {"train": "train", "dev": "val", "test": "test"}[split_name]
        xml_name = f"{base}.madcat.xml"
        missing_page = bad and pi == 1
        broken_xml = bad and pi == 4
        page_records = []
        for li in range(lines_per_page):
            zone = []
            for wi in range(words_per_line):
                word = ARABIC_WORDS[(k + 5 * wi) % len(ARABIC_WORDS)]
                k += 1
                x0, y0 = page_w - 70 * (wi + 1), 20 + 40 * li
                w, h = 30 + 4 * len(word), 26
                pts = [(x0, y0), (x0 + w - 1, y0 + 2), (x0 + w - 3, y0 + h - 1), (x0 + 1, y0 + h - 3)]
                page[y0 + 4:y0 + h - 4, x0 + 3:x0 + w - 3:4] = 30
                ti = f"w{li}_{wi}"
                text = word
                if wi == 0 and li == 1:
                    text = "\ufefb" + "عب"                      # ﻻعب, presentation form of لاعب
                ref = f' ref_id="{ti}"'
                reason = None
                if bad and pi == 0 and li == 0 and wi == 1:
                    ref, reason = "", "no_word_box"
                elif bad and pi == 0 and li == 0 and wi == 2:
                    ref, reason = ' ref_id="w_missing"', "unknown_word_box"
                elif bad and pi == 3 and li == 2 and wi == 3:
                    pts = [(page_w + 50, page_h + 50), (page_w + 90, page_h + 80)]
                    reason = "box_outside_page"
                zone.append((ti, pts, text))
                page_records.append((f'<token id="t{li}_{wi}"{ref}><source>{text}</source></token>', text, reason,
                                     (min(x for x, _ in pts), min(y for _, y in pts),
                                      max(x for x, _ in pts) + 1, max(y for _, y in pts) + 1)))
            zones.append(zone)
        xml_rel = f"{MADCAT_RELEASE}/data/madcat/{xml_name}"
        xml = _madcat_xml(base, writer, (page_w, page_h), zones, [t for t, *_ in page_records])
        xml_lines = xml.split("\n")
        token_lines = [next(n for n, line in enumerate(xml_lines, start=1) if line.strip().startswith(t.split(">")[0]))
                       for t, *_ in page_records]
        if broken_xml:
            xml = xml[: len(xml) // 2]
        (rel / "data" / "madcat" / xml_name).write_text(xml, encoding="utf-8")
        if not missing_page:
            Image.fromarray(page, mode="L").save(rel / "data" / "images" / f"{base}.tif", format="TIFF")
        conditions.append(f"{base}\t{writer}\tpen\t{'IUC' if pi % 2 else 'ILC'}")
        if listed:
            lists[split_name].append(f"{xml_name} s{pi % 3 + 1}")
        if not listed and split_lists:
            lay.bad.append((xml_rel, None, "not_in_lists"))
            continue
        if broken_xml:
            lay.bad.append((xml_rel, None, "malformed_xml"))
            continue
        for token_line, (_, text, reason, box) in zip(token_lines, page_records):
            if reason:
                lay.bad.append((xml_rel, token_line, reason))
            elif missing_page:
                lay.bad.append((xml_rel, token_line, "missing_image"))
            else:
                label = text.replace("\ufefb", "لا")
                lay.kept.append({"split": split if split_lists else None, "label": label, "writer": writer,
                                 "size": (box[2] - box[0], box[3] - box[1]), "page": base, "box": box})
    (rel / "docs" / "writing_conditions.tab").write_text("\n".join(conditions) + "\n", encoding="utf-8")
    if split_lists:
        for name, items in lists.items():
            (root / f"madcat.{name}.raw.lineid").write_text("".join(f"{i}\n" for i in items), encoding="utf-8")
    return lay


# ---------------------------------------------------------------------------------------------
# Reading what an import wrote
# ---------------------------------------------------------------------------------------------

def quiet(**kw) -> dict:
    """Keyword arguments of `import_dataset` without a progress bar or log lines, plus `kw`."""
    return {"show_progress": False, "log": lambda m: None, **kw}


def read_collection(out: Path) -> tuple[dict, list[dict]]:
    """The collection's meta.json and one row per stored image: split, label, writer, size."""
    import json

    from datasets.format import load_dataset

    meta = json.loads((out / "meta.json").read_text(encoding="utf-8"))
    rows = []
    for split in meta["splits"]:
        ds = load_dataset(out / split, check_images=True)
        for i, (rel, text) in enumerate(ds.entries):
            with Image.open(ds.image_path(i)) as im:
                assert im.mode == "L"
                size = im.size
            rows.append({"split": split, "label": text, "writer": ds.meta.writers.get(rel), "size": size,
                         "path": ds.image_path(i)})
    return meta, rows


def read_report(out: Path) -> list[tuple[str, int | None, str, str]]:
    """import_report.tsv rows: (file, line, reason, detail)."""
    lines = (out / "import_report.tsv").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "file\tline\treason\tdetail"
    rows = []
    for line in lines[1:]:
        f, n, reason, detail = line.split("\t")
        rows.append((f, int(n) if n else None, reason, detail))
    return rows


def report_matches(out: Path, expected: list[tuple[str, int | None, str]]) -> tuple[list, list]:
    """(got, expected) (file, line, reason) lists, sorted; an expected line None matches any line."""
    got = sorted((f, n, r) for f, n, r, _ in read_report(out))
    lines = {(f, r): n for f, n, r in got}
    want = sorted((f, lines.get((f, r)) if n is None else n, r) for f, n, r in expected)
    return got, want


def as_multiset(rows, keys=("split", "label", "writer", "size")) -> list[tuple]:
    """Rows as sorted tuples of `keys` (sizes as tuples), to compare collections regardless of order."""
    return sorted((tuple(tuple(r[k]) if k == "size" else r[k] for k in keys) for r in rows), key=repr)
