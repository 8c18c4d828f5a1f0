"""``python -m lossparity.bench``: :func:`lossparity.bench.command.main`."""
import sys

from lossparity.bench.command import main

sys.exit(main())
