"""Fonts and rendering: glyph coverage (no missing-glyph boxes), Arabic shaping and direction."""
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont, features
from scipy import ndimage

from datasets.alphabet import ARABIC, FRENCH
from datasets.errors import UserError
from datasets.fonts import find_font, glyph_coverage, load_pool, require_raqm
from datasets.render import Renderer, WriterStyle, random_writer

PLAIN = WriterStyle("w", 0, slant=0.0, weight=0, size=0.8, spacing=0.0, x_scale=1.0, drift=0.0,
                    drift_period=4.0, ink=0)


@pytest.fixture(scope="module")
def fr_pool():
    return load_pool("fr", FRENCH)


@pytest.fixture(scope="module")
def ar_pool():
    return load_pool("ar", ARABIC)


def _cmap(path):
    from fontTools.ttLib import TTFont
    with TTFont(str(path), lazy=True) as tt:
        return tt.getBestCmap()


def _glyph(font, text, direction=None):
    im = Image.new("L", (200, 160), 0)
    kw = {"direction": direction, "language": "ar"} if direction else {}
    ImageDraw.Draw(im).text((20, 20), text, fill=255, font=font, **kw)
    return np.asarray(im)


def test_french_pool_coverage_matches_cmap_and_avoids_notdef_boxes(fr_pool):
    assert len(fr_pool) == 16
    lacking = [f for f in fr_pool if "€" not in f.coverage]
    assert lacking, "docs/DESIGN.md §5: some default fonts lack €"
    for f in fr_pool:
        cmap = _cmap(f.path)
        assert all(ord(c) in cmap for c in f.coverage)
    # a character a font lacks draws exactly the .notdef glyph (the box we must never render)
    f = lacking[0]
    font = ImageFont.truetype(str(f.path), 64)
    notdef = _glyph(font, "\ue000")  # private-use code point: not in any of these fonts
    assert np.array_equal(_glyph(font, "€"), notdef)
    # ... while every covered character draws something else
    for c in "œ€Œé":
        for g in fr_pool:
            if c in g.coverage:
                gf = ImageFont.truetype(str(g.path), 64)
                assert not np.array_equal(_glyph(gf, c), _glyph(gf, "\ue000")), (g.name, c)


def test_build_chooses_covering_fonts_for_every_word(tmp_path):
    from datasets.build import build_standin
    from datasets.format import load_dataset
    import json

    out = build_standin("rimes-like", tmp_path / "c", 48, 8, 8, height=32, width=128, seed=3,
                        fonts="Ecolier-court.ttf,dkg.ttf,Purisa.otf", workers=1, show_progress=False,
                        writers_per_font=3)
    meta = json.loads((out / "meta.json").read_text())
    styles = meta["writer_styles"]
    cmaps = {f: _cmap(find_font(f)) for f in ("Ecolier-court.ttf", "dkg.ttf", "Purisa.otf")}
    for split in ("train", "val", "test"):
        ds = load_dataset(out / split)
        for rel, text in ds.entries:
            font = styles[ds.meta.writers[rel]]["font"]
            assert all(ord(c) in cmaps[font] for c in text), (font, text)


def test_missing_font_names_the_debian_package(tmp_path):
    with pytest.raises(UserError, match="fonts-ecolier-court"):
        load_pool("fr", FRENCH, font_dir=tmp_path)
    with pytest.raises(UserError, match="not found"):
        load_pool("fr", FRENCH, fonts="NoSuchFont.ttf")


def test_require_raqm(monkeypatch):
    require_raqm()  # installed here
    monkeypatch.setattr(features, "check", lambda name: False)
    with pytest.raises(UserError, match="libfribidi0"):
        require_raqm()


def test_arabic_is_shaped_joined_and_right_to_left(ar_pool):
    path = str(ar_pool[0].path)  # Amiri
    raqm = ImageFont.truetype(path, 64, layout_engine=ImageFont.Layout.RAQM)
    basic = ImageFont.truetype(path, 64, layout_engine=ImageFont.Layout.BASIC)
    word = "سمع"  # three dotless letters that all join
    shaped, unshaped = _glyph(raqm, word, "rtl"), _glyph(basic, word)
    assert not np.array_equal(shaped, unshaped)
    n_shaped = ndimage.label(shaped > 30)[1]  # thin joins are anti-aliased
    n_basic = ndimage.label(unshaped > 30)[1]
    assert n_shaped == 1 and n_basic >= 3

    # the renderer: alef (the tall first letter) ends up on the right; content is right-aligned
    r = Renderer(ar_pool, "rtl", 64, 256)
    img = r.render("امم", PLAIN, np.random.default_rng(0))
    assert img is not None and img.shape == (64, 256)
    ink = img < 128
    cols = np.where(ink.any(axis=0))[0]
    assert cols.min() > 256 // 3 and cols.max() >= 256 - 20  # left-padded
    tops = np.array([np.argmax(ink[:, c]) if ink[:, c].any() else 64 for c in range(256)])
    tallest = int(np.argmin(tops))
    assert tallest > (cols.min() + cols.max()) / 2  # alef is in the right half of the word


def test_french_render_is_left_aligned_and_styled(fr_pool):
    r = Renderer(fr_pool, "ltr", 64, 256)
    rng = np.random.default_rng(1)
    style = random_writer("w0", 1, "ltr", rng)
    img = r.render("Bonjour", style, rng)
    assert img.dtype == np.uint8 and img.shape == (64, 256)
    cols = np.where((img < 128).any(axis=0))[0]
    assert cols.min() < 20 and np.all(img[:, -60:] == 255)  # right-padded with pure white
    assert r.render("anticonstitutionnellement" * 3, style, rng) is None  # too wide
    a = r.render("mot", style, np.random.default_rng(5))
    b = r.render("mot", style, np.random.default_rng(5))
    assert np.array_equal(a, b)


def test_glyph_coverage_reads_cmap(fr_pool):
    eco = next(f for f in fr_pool if f.name == "Ecolier-court.ttf")
    cov = glyph_coverage(Path(eco.path), "aŒ€é")
    assert cov == frozenset("aé") and eco.covers("élève") and not eco.covers("Œuvre")
