"""``python -m lossparity``: the ``lossparity`` command (:mod:`lossparity.cli`)."""
import sys

from lossparity.cli import main

sys.exit(main())
