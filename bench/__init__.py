"""Benchmarks: how close each stage of the product is to its limit, measured side by side.

`python -m bench` (or `make bench`) runs every benchmark in one process on this machine and
writes bench/results.json and the generated part of bench/RESULTS.md. Each benchmark measures the
product and its limit in the same run, in alternating rounds, and reports the median ratio.
Nothing here is a test: no figure fails the run.
"""
