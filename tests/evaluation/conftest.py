"""Every evaluation test runs torch on one thread (the shared ``one_torch_thread`` fixture).

On a 2-core machine shared with other work, torch's two OpenMP threads wait on each other: measured here,
an Inception forward took 0.73 s per image with 2 threads and 0.19 s with 1, and a 2048-d FID 37 s against 3 s.
"""

import pytest


@pytest.fixture(autouse=True)
def evaluation_on_one_thread(one_torch_thread):
    yield
