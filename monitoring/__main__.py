"""``python -m monitoring worker -l info``: run the drift worker (faust's own command line).

The drift policy is ``settings.drift`` (PRICEMYRIDE_DRIFT_*).
"""

import sys

from monitoring.app import create_monitor_app
from pricemyride.faustapp import without_web
from pricemyride.process import quiet_libraries
from pricemyride.settings import Settings


def main() -> None:
    quiet_libraries()
    sys.argv = without_web(sys.argv)
    settings = Settings()
    create_monitor_app(settings).main()


if __name__ == "__main__":
    main()
