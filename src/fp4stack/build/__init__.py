"""Patched wheels: the official wheel repacked with the files a series changed."""
