"""``python -m pricemyride_cli``: the same as the ``pricemyride`` command."""

import sys

from pricemyride_cli.cli import main

if __name__ == "__main__":
    sys.exit(main())
