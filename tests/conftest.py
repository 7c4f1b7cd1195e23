import os

# Tests run on the CPU with two threads, as CI does; torch picks this up at import.
os.environ.setdefault("OMP_NUM_THREADS", "2")
