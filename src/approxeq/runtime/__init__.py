"""Where and how a job runs (files, locks, logs, devices, checkpoint identity), never what it computes."""
