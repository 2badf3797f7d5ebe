"""Fault-injection scenarios over the local stack, checked against the simulator's ground truth."""
