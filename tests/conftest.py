import os

# Tests run on the CPU. Under pytest-xdist (`-n 2` in pyproject's addopts: CI's two cores) each of
# the two workers takes one thread; run alone (`-n 0`), two threads. torch picks this up at import.
os.environ.setdefault("OMP_NUM_THREADS", "1" if os.environ.get("PYTEST_XDIST_WORKER") else "2")
