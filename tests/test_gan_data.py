"""The tiny drawn word-image datasets the GAN tests train on (the `make_tiny` fixture, tests/conftest.py)."""
import pytest

from datasets.format import load_dataset

pytestmark = pytest.mark.usefixtures("one_thread")


def test_make_tiny(tmp_path, make_tiny, tiny_alphabet):
    ds = load_dataset(make_tiny(tmp_path / "d", n=8))
    assert len(ds) == 8 and ds.meta.alphabet.fingerprint == tiny_alphabet.fingerprint
