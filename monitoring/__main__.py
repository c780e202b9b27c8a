"""``python -m monitoring worker -l info``: run the drift worker (faust's own command line).

Windows and cadence come from Settings (PRICEMYRIDE_DRIFT_*); the rest of the policy is DriftPolicy's.
"""

import sys

from monitoring.app import create_monitor_app
from monitoring.policy import policy_from_settings
from pricemyride.faustapp import without_web
from pricemyride.process import quiet_libraries
from pricemyride.settings import Settings


def main() -> None:
    quiet_libraries()
    sys.argv = without_web(sys.argv)
    settings = Settings()
    create_monitor_app(settings, policy_from_settings(settings)).main()


if __name__ == "__main__":
    main()
