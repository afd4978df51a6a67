"""One module per group of verbs; each defines ``add_parser(subparsers)``."""
