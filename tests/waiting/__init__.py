"""Waiting for one job or many, on the virtual clock and against the fake."""
