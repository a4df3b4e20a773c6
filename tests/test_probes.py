"""Diagnostic probes: the reader-transfer probe's glyph layout and a tiny end-to-end run; the
readable-subset probe's ranking, its predictions reader and a tiny end-to-end run."""
import json

import pytest
import torch

from benchmark.probes.readable_subset import image_errors, keep_readable, main as readable_subset
from benchmark.probes.reader_transfer import SUBCOLUMNS, GlyphBank, main
from datasets.errors import UserError

pytestmark = pytest.mark.usefixtures("one_thread")


def _bank(rtl: bool) -> GlyphBank:
    bank = GlyphBank(num_classes=4, height=2, width=40, char_px=10.0, rtl=rtl)
    with torch.no_grad():   # class c holds the value c/10 everywhere (tanh keeps the order)
        bank.bank.copy_(torch.arange(4, dtype=torch.float32).view(4, 1, 1).expand(4, 2, SUBCOLUMNS) / 10)
    return bank


@pytest.mark.parametrize("rtl", [False, True])
def test_glyph_bank_places_each_character_in_its_cell(rtl):
    """Character i fills columns [10 i, 10 i + 10) from the writing side; the rest is white paper."""
    img = _bank(rtl)(torch.tensor([[3, 1]]), torch.tensor([2]))[0, 0, 0]     # one row, 40 columns
    if rtl:
        img = img.flip(0)
    expected = torch.tensor([0.3] * 10 + [0.1] * 10).tanh()
    assert torch.allclose(img[:20], expected)
    assert torch.equal(img[20:], torch.ones(20))


def test_glyph_bank_sub_columns_run_across_the_cell():
    """Within a cell the patch's sub-columns advance from the writing side."""
    bank = _bank(False)
    assert bank.sub[:10].tolist() == sorted(bank.sub[:10].tolist())
    assert bank.sub[0] == 0 and bank.sub[9] == SUBCOLUMNS - 1
    assert torch.equal(_bank(True).sub, bank.sub.flip(0))


def test_probe_runs_end_to_end_and_reports_the_judge(tmp_path, make_tiny):
    from htr.train import HtrTrainConfig, train as train_htr

    data = make_tiny(tmp_path / "d", n=32)
    rec = train_htr(HtrTrainConfig(train=str(data), val=str(data), out=str(tmp_path / "rec"), max_steps=2,
                                   width_mult=0.25, batch_size=8, threads=1, show_progress=False))
    out = tmp_path / "probe.json"
    assert main(["--data", str(data), "--readers", f"{rec},{rec}", "--judge", str(rec), "--augment",
                 "--iterations", "3", "--json", str(out), "--png", str(tmp_path / "p.png")]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["iteration"] for r in rows] == [3]
    assert all(r[k] >= 0 for r in rows for k in ("ctc", "cer_reader", "cer_judge"))
    assert (tmp_path / "p.png").is_file()


def test_probe_refuses_a_missing_reader(tmp_path, capsys, make_tiny):
    data = make_tiny(tmp_path / "d", n=8)
    assert main(["--data", str(data), "--readers", str(tmp_path / "nope"), "--judge", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("reader_transfer: error:")


def test_readable_subset_ranks_by_the_judges_error_in_dataset_order_among_equals():
    entries = [(f"images/{i}.png", "ab") for i in range(5)]
    errors = {"images/0.png": 0.5, "images/1.png": 0.0, "images/2.png": 0.5, "images/3.png": 1.0, "images/4.png": 0.0}
    assert keep_readable(entries, errors, 3) == [0, 1, 4]
    with pytest.raises(UserError, match="only 5 images"):
        keep_readable(entries, errors, 6)
    with pytest.raises(UserError, match="lack 1 image"):
        keep_readable(entries, {k: v for k, v in errors.items() if k != "images/3.png"}, 2)


def test_readable_subset_reads_the_predictions_file_as_written(tmp_path):
    from htr.evaluate import write_predictions

    tsv = tmp_path / "p.tsv"
    write_predictions(tsv, ["images/a.png", "images/b.png"], ['l"été', "mot"], ['l"ete', ""])
    assert image_errors(tsv) == {"images/a.png": pytest.approx(2 / 5), "images/b.png": 1.0}   # é → e twice


def test_readable_subset_keeps_the_images_the_judge_reads_best(tmp_path, make_tiny):
    from htr.evaluate import evaluate
    from htr.train import HtrTrainConfig, train as train_htr
    from datasets.format import load_dataset

    data = make_tiny(tmp_path / "d", n=24)
    judge = train_htr(HtrTrainConfig(train=str(data), val=str(data), out=str(tmp_path / "judge"), max_steps=2,
                                     width_mult=0.25, batch_size=8, threads=1, show_progress=False))
    out = tmp_path / "kept"
    assert readable_subset(["--data", str(data), "--judge", str(judge), "--keep", "10", "--out", str(out)]) == 0
    kept = load_dataset(out, check_images=True)
    evaluate(judge, data, tmp_path / "all.tsv")
    errors = image_errors(tmp_path / "all.tsv")
    source = load_dataset(data)
    by_text = {}
    for rel, text in source.entries:
        by_text.setdefault(((data / rel).read_bytes(), text), []).append(errors[rel])
    kept_errors = [min(by_text[((out / rel).read_bytes(), text)]) for rel, text in kept.entries]
    assert len(kept.entries) == 10 and kept.meta.stats["images"] == 10
    assert max(kept_errors) <= sorted(errors.values())[9]


def test_readable_subset_refuses_an_existing_output(tmp_path, capsys, make_tiny):
    data = make_tiny(tmp_path / "d", n=8)
    (tmp_path / "kept").mkdir()
    assert readable_subset(["--data", str(data), "--judge", str(tmp_path / "nope"), "--keep", "2",
                            "--out", str(tmp_path / "kept")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("readable_subset: error:") and "already exists" in err[0]
    assert list((tmp_path / "kept").iterdir()) == []


def test_readable_subset_by_length_keeps_each_lengths_share():
    texts = ["a", "b", "c", "d", "long", "word", "more", "five!", "six!!", "seven"]
    entries = [(f"images/{i}.png", t) for i, t in enumerate(texts)]
    errors = {rel: (0.9 if len(t) == 1 else 0.1 * (i % 3)) for i, (rel, t) in enumerate(entries)}
    plain = keep_readable(entries, errors, 5)
    assert all(len(texts[i]) > 1 for i in plain)            # the one-letter words all read worst
    kept = keep_readable(entries, errors, 5, by_length=True)
    assert sorted(len(texts[i]) for i in kept) == [1, 1, 4, 4, 5]   # shares 2, 1.5, 1.5 of 5: ties to the shorter
    assert kept == sorted(kept) and len(set(kept)) == 5
