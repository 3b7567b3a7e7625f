import os

import pytest
import torch

# Tests run on the CPU with fixed seeds; fix the thread count so results do not depend on the machine.
torch.set_num_threads(int(os.environ.get("WGAN_TEST_THREADS", "1")))
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def events():
    """A list to use as a sink (`events.append`), for asserting what the engine emitted."""
    return []
