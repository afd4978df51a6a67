"""The ``fp4stack`` command line: every verb's arguments, and all printing."""

from fp4stack.cli.main import main

__all__ = ["main"]
