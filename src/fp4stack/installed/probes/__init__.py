"""Behaviour probes: one program per defect, each run in the interpreter under test.

That interpreter has the upstream (torch, compressed_tensors, ...) but need not have fp4stack,
so a probe imports nothing of fp4stack (``tests/fp4stack/test_import_cycles.py`` checks it) and
nothing of this directory either. ``python /abs/path/<probe>.py`` prints one JSON object,
``{"affected": bool, "detail": str}``, as its last line on stdout; an exception (the upstream
moved a module, say) ends it with a traceback instead, and the fingerprint decides then.
A patch names its probe in its header (``Probe: <module>``); ``installed.behaviour`` runs an
environment's probes in one interpreter through ``_runner.py`` (torch is imported once),
which runs each as ``__main__`` and collects the line it printed. A probe runs on CPU, in
seconds, and keeps to the Python versions the upstream supports.
"""
