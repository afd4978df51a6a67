"""Test orchestration: venvs, upstream suites, our tests, prove overlays and the pytest
runner (with the seeding plugin loaded into every run)."""
