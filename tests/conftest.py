"""Shared test fixtures."""
import pytest
import torch


@pytest.fixture
def one_thread():
    """Single-threaded torch: on a shared 2-core machine two spinning OpenMP threads only contend."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
