"""Test helpers for running enginebench's workflow through Slurm (see harness.py)."""
