"""FID InceptionV3: loads a pt_inception-style state dict, gives 2048-d features; FID end to end
with a local weights file; optional cross-check against pytorch-fid's own modules."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from benchmark.metrics.fid import fid
from benchmark.metrics.kid import kid
from benchmark.metrics.inception import FEATURE_DIM, FIDInceptionV3, inception_features, load_inception, preprocess
from datasets.errors import UserError


def random_state_dict(seed: int = 0) -> dict:
    """A state dict with pt_inception's keys and shapes and well-scaled random values."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, v in FIDInceptionV3().state_dict().items():
        if k.endswith("num_batches_tracked"):
            continue  # absent from the ported TensorFlow weights
        if k.endswith("running_var") or (k.endswith(".weight") and v.dim() == 1):
            out[k] = 0.5 + torch.rand(v.shape, generator=g)
        elif v.dim() == 1:
            out[k] = 0.1 * torch.randn(v.shape, generator=g)
        else:
            fan_in = v[0].numel()
            out[k] = torch.randn(v.shape, generator=g) * (2.0 / fan_in) ** 0.5
    return out


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Inception is compute-bound; on a shared 2-core machine one thread avoids OpenMP stalls."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("inc") / "pt_inception-test.pth"
    torch.save(random_state_dict(), path)
    return path


def test_state_dict_keys_match_pytorch_fid_layout():
    keys = FIDInceptionV3().state_dict().keys()
    for k in ("Conv2d_1a_3x3.conv.weight", "Conv2d_1a_3x3.bn.running_var", "Mixed_5b.branch_pool.conv.weight",
              "Mixed_6e.branch7x7dbl_5.bn.bias", "Mixed_7c.branch3x3dbl_3b.conv.weight", "fc.weight", "fc.bias"):
        assert k in keys
    assert FIDInceptionV3().state_dict()["fc.weight"].shape == (1008, 2048)


def test_loads_state_dict_and_gives_2048_features(weights_file):
    model = load_inception(weights_file)
    images = np.random.default_rng(0).integers(0, 256, (2, 16, 64), dtype=np.uint8)
    feats = inception_features(model, images, batch_size=1)
    assert feats.shape == (2, FEATURE_DIM) and np.isfinite(feats).all() and feats.std() > 0
    x = preprocess(images)
    assert x.shape == (2, 3, 299, 299) and float(x.min()) >= -1 and float(x.max()) <= 1


def test_wrong_state_dict_is_user_error(tmp_path):
    bad = tmp_path / "bad.pth"
    torch.save({"conv.weight": torch.zeros(1)}, bad)
    with pytest.raises(UserError, match="pt_inception"):
        load_inception(bad)
    (tmp_path / "garbage.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(UserError, match="cannot read"):
        load_inception(tmp_path / "garbage.pth")


def _folder(tmp_path, images):
    from PIL import Image

    folder = tmp_path / "a"
    folder.mkdir()
    for i, img in enumerate(images):
        Image.fromarray(img).save(folder / f"{i}.png")
    return folder


def test_kid_with_inception_weights_from_environment(weights_file, tmp_path, monkeypatch):
    a = np.random.default_rng(1).integers(0, 256, (2, 16, 32), dtype=np.uint8)  # inception is slow on CPU
    monkeypatch.setenv("HTRAUG_INCEPTION_WEIGHTS", str(weights_file))
    r = kid(_folder(tmp_path, a), 255 - a, subsets=2, batch_size=2)
    assert r["features"] == "inception" and r["n_real"] == 2 and np.isfinite(r["kid"])


@pytest.mark.slow
def test_fid_with_inception_weights_and_stats_cache(weights_file, tmp_path):
    """End to end at d = 2048 (two 2048×2048 eigendecompositions per FID: slow on a busy CPU)."""
    a = np.random.default_rng(1).integers(0, 256, (3, 16, 32), dtype=np.uint8)
    folder = _folder(tmp_path, a)
    first = fid(folder, a, inception_weights=str(weights_file), batch_size=3)
    assert first["features"] == "inception" and first["n_real"] == 3 and first["fid"] < 1e-6
    assert list((folder / ".cache").glob("featstats-inception-n3-*.npz"))
    again = fid(folder, 255 - a, inception_weights=str(weights_file), batch_size=3)
    assert again["cached_real"] and not again["cached_fake"] and again["fid"] > 0


PYTORCH_FID_CHECK = textwrap.dedent("""
    import sys, numpy as np, torch
    try:
        import torchvision  # noqa: F401
    except RuntimeError:
        # A CUDA build of torchvision beside a CPU torch: its C++ ops fail to load and its meta
        # registrations then fail. Inception needs none of them: declare them as stubs.
        lib = torch.library.Library("torchvision", "DEF")
        for op in ("roi_align _roi_align_backward ps_roi_align _ps_roi_align_backward roi_pool "
                   "_roi_pool_backward ps_roi_pool _ps_roi_pool_backward nms qnms qroi_align "
                   "deform_conv2d _deform_conv2d_backward").split():
            lib.define(op + "(Tensor x) -> Tensor")
        for name in [m for m in sys.modules if m.startswith("torchvision")]:
            del sys.modules[name]
    import pytorch_fid.inception as pfi
    state = torch.load(sys.argv[1], weights_only=True)
    pfi.load_state_dict_from_url = lambda *a, **k: state
    ref = pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
    from benchmark.metrics.inception import load_inception, inception_features
    ours = load_inception(sys.argv[1])
    imgs = np.random.default_rng(0).integers(0, 256, (4, 32, 128), dtype=np.uint8)
    with torch.no_grad():
        x = torch.from_numpy(imgs).float().div(255)[:, None].expand(-1, 3, -1, -1)
        a = ref(x)[0].flatten(1).double().numpy()
    b = inception_features(ours, imgs, batch_size=4)
    rel = np.abs(a - b).max() / np.abs(a).max()
    print("REL", rel)
    sys.exit(0 if rel < 1e-4 else 1)
""")


@pytest.mark.slow
def test_matches_pytorch_fid(weights_file):
    """Same weights, same images: our features equal pytorch-fid's InceptionV3 to 1e-4 relative."""
    pytest.importorskip("pytorch_fid")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (os.getcwd(), os.environ.get("PYTHONPATH")) if p))
    r = subprocess.run([sys.executable, "-c", PYTORCH_FID_CHECK, str(weights_file)], capture_output=True, text=True,
                       env=env, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
