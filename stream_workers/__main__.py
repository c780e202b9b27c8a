"""``python -m stream_workers worker -l info``: run a scoring worker (faust's own command line)."""

from pricemyride.settings import Settings
from stream_workers.app import create_app


def main() -> None:
    create_app(Settings()).main()


if __name__ == "__main__":
    main()
