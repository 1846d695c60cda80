"""Shared fixtures: the end-to-end world (both simulators and a real bot) lives in tests/e2e_world.py."""

pytest_plugins = ["tests.e2e_world", "tests.pg"]
