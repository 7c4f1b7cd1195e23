import os

import pytest

# Tests run on the CPU. Under pytest-xdist (`-n 2` in pyproject's addopts: CI's two cores) each of
# the two workers takes one thread; run alone (`-n 0`), two threads. torch picks this up at import.
os.environ.setdefault("OMP_NUM_THREADS", "1" if os.environ.get("PYTEST_XDIST_WORKER") else "2")


def pytest_collection_modifyitems(items):
    """The end-to-end tests share one quick run (a session fixture, built once per xdist worker):
    keep them on one worker (`--dist loadgroup`), so the quick run is built once."""
    for item in items:
        if "quick_run" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("quick_run"))
