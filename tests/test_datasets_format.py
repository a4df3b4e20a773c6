"""Dataset format core: preprocessing, packed cache staleness, one-line errors."""
import numpy as np
import pytest
import torch

from datasets.alphabet import FRENCH
from datasets.cpus import available_cpus
from datasets.errors import UserError
from datasets.files import StagingDir, read_jsonl, rewind_jsonl
from datasets.format import DatasetMeta, DatasetWriter, load_dataset
from datasets.packed import load_packed
from datasets.preprocess import fit_to_canvas, from_unit_range, to_unit_range
from datasets.torch_dataset import WordImageDataset, batch_from_indices


def _word(h, w, value=0):
    img = np.full((h, w), 255, np.uint8)
    img[2:-2, 2:-2] = value
    return img


def test_isometric_resize_and_padding_directions():
    img = _word(64, 100)
    ltr = fit_to_canvas(img, 32, 128, "ltr")
    rtl = fit_to_canvas(img, 32, 128, "rtl")
    assert ltr.shape == rtl.shape == (32, 128)
    ink_l = np.where((ltr < 128).any(0))[0]
    ink_r = np.where((rtl < 128).any(0))[0]
    assert ink_l.min() <= 2 and ink_l.max() <= 50 and np.all(ltr[:, 50:] == 255)  # 100 * 32/64 = 50 wide
    assert ink_r.max() >= 125 and ink_r.min() >= 78 and np.all(rtl[:, :78] == 255)
    assert fit_to_canvas(_word(32, 129), 32, 128) is None  # too wide: dropped
    assert fit_to_canvas(_word(32, 128), 32, 128) is not None
    x = to_unit_range(np.array([0, 255], np.uint8))
    assert np.allclose(x, [-1, 1]) and list(from_unit_range(x)) == [0, 255]


def _dataset(root, widths, direction="ltr"):
    meta = DatasetMeta("t", "fr", direction, FRENCH, split="train")
    w = DatasetWriter(root, meta)
    for i, width in enumerate(widths):
        w.add(_word(32, width), f"mot{i}", writer="w1")
    return w.close()


def test_packing_in_several_processes_writes_the_same_cache(tmp_path, monkeypatch):
    import datasets.packed as packed

    widths = [40 + (7 * i) % 300 for i in range(37)]           # some too wide: dropped in order
    _dataset(tmp_path / "a", widths)
    _dataset(tmp_path / "b", widths)
    one = load_packed(tmp_path / "a", 16, 64, show_progress=False)
    assert packed.pack_workers(37) == 1                         # small set: no pool
    monkeypatch.setattr(packed, "PACK_CHUNK", 4)                # small chunks: the pool path
    cpus = available_cpus()
    if cpus < 2:
        pytest.skip("the pool path needs 2 CPUs")
    assert packed.pack_workers(37) == min(cpus, packed.PACK_MAX_WORKERS, 37 // 4) >= 2
    many = load_packed(tmp_path / "b", 16, 64, show_progress=False)
    assert many.texts == one.texts and many.dropped == one.dropped > 0
    assert np.array_equal(np.asarray(many.images), np.asarray(one.images))


def test_packed_cache_counts_drops_and_rebuilds_when_labels_change(tmp_path):
    _dataset(tmp_path / "d", [40, 100, 300, 60], "rtl")
    p = load_packed(tmp_path / "d", 16, 64, show_progress=False)
    assert len(p) == 3 and p.dropped == 1 and p.direction == "rtl"
    assert p.texts == ["mot0", "mot1", "mot3"] and p.images.shape == (3, 16, 64)
    assert np.all(p.images[0][:, :40] == 255)  # RTL: left padding
    again = load_packed(tmp_path / "d", 16, 64, show_progress=False)
    assert again.texts == p.texts
    labels = tmp_path / "d" / "labels.tsv"
    labels.write_text(labels.read_text().replace("mot0", "autre"), encoding="utf-8")
    fresh = load_packed(tmp_path / "d", 16, 64, show_progress=False)
    assert fresh.texts[0] == "autre"
    ds = WordImageDataset(fresh, FRENCH, 16, 64)
    images, targets, lengths = batch_from_indices(ds, [2, 0])
    assert images.shape == (2, 1, 16, 64) and lengths.tolist() == [5, 4] and len(targets) == 9
    assert torch.equal(images[0], ds[0][0]) and torch.equal(images[1], ds[2][0])  # sorted, same values
    assert images.min() >= -1 and images.max() == 1


def test_bad_labels_are_one_line_errors(tmp_path):
    _dataset(tmp_path / "d", [40])
    labels = tmp_path / "d" / "labels.tsv"
    labels.write_text("images/0000000.png\tmot\nno tab here\n", encoding="utf-8")
    with pytest.raises(UserError) as e:
        load_dataset(tmp_path / "d")
    assert f"{labels}:2:" in str(e.value) and "\n" not in str(e.value)


def test_staging_dir_leaves_nothing_on_failure(tmp_path):
    with pytest.raises(RuntimeError):
        with StagingDir(tmp_path / "out") as stage:
            (stage / "x").write_text("partial")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_run_log_rewinds_to_a_checkpoint_and_ignores_torn_lines(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_text('{"event": "start", "step": 0}\n{"step": 5, "v": 1}\n{"step": 10, "v": 2}\n{"step": 15, "v"')
    assert [r.get("step") for r in read_jsonl(log)] == [0, 5, 10]       # the torn last line is skipped
    rewind_jsonl(log, "step", 10)
    assert read_jsonl(log) == [{"event": "start", "step": 0}, {"step": 5, "v": 1}, {"step": 10, "v": 2}]
    assert log.read_text().endswith("}\n")                               # appends start on a fresh line
    rewind_jsonl(log, "step", 5)
    assert [r["step"] for r in read_jsonl(log)] == [0, 5]
    rewind_jsonl(log, "step", 0)                                            # a fresh start empties it
    assert log.read_text() == ""
    rewind_jsonl(tmp_path / "missing.jsonl", "step", 3)
    assert not (tmp_path / "missing.jsonl").exists()


def test_accelerator_input_path_gives_the_cpu_values():
    """An accelerator receives uint8 images and maps them through `to_unit_range`'s own table:
    every byte value gives the float the CPU path gives, bit for bit (checked here on the CPU,
    where the table lookup is the accelerator branch's arithmetic)."""
    import torch
    from datasets.torch_dataset import unit_batch, unit_range_table

    u8 = np.random.default_rng(0).integers(0, 256, (3, 16, 64), dtype=np.uint8)
    u8[0, 0, :2] = (0, 255)
    on_table = unit_range_table(torch.device("cpu"))[torch.from_numpy(u8).long()].unsqueeze(1)
    cpu = unit_batch(u8)
    assert cpu.shape == (3, 1, 16, 64) and cpu.dtype == torch.float32
    assert torch.equal(on_table, cpu) and cpu[0, 0, 0, 0] == -1 and cpu[0, 0, 0, 1] == 1
    assert torch.equal(unit_batch(u8, "cpu"), cpu)
