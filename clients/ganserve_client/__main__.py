"""``python -m ganserve_client``: the ``ganserve`` CLI."""

import sys

from .cli import main

sys.exit(main())
