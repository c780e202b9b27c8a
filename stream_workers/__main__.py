"""``python -m stream_workers worker -l info``: run a scoring worker (faust's own command line)."""

import sys

from pricemyride.faustapp import without_web
from pricemyride.process import quiet_libraries
from pricemyride.settings import Settings
from stream_workers.app import create_app


def main() -> None:
    quiet_libraries()
    sys.argv = without_web(sys.argv)
    create_app(Settings(), preload="worker" in sys.argv[1:2]).main()


if __name__ == "__main__":
    main()
