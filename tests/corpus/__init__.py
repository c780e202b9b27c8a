"""Inputs kept for the tests: the hostile corpus that the worker and the monitor must survive."""
