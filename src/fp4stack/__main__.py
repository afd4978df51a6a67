from __future__ import annotations

import sys

from fp4stack.cli import main

sys.exit(main())
