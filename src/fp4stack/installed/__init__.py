"""A user's Python environment: what of ours is installed (probe), which known defects its
code has (defects, fingerprint), and putting our patched wheels in or taking them out
(install). Every look inside runs in that interpreter through ``core.runner``."""
