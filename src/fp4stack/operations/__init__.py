"""Workflows the verbs run, below the CLI: one module per workflow.

Each joins the layers beneath it (``stack``, ``build``, ``testing``, …) into one job, takes
typed arguments, returns data, raises the stages' errors and reports progress with
``core.log.log``. It never prints: the CLI prints what it returns.
"""
