"""``python -m retrainer``: the same as ``pricemyride retrain-listener``."""

from pricemyride.process import configure_logging
from pricemyride.settings import load_settings
from retrainer.listener import listen

if __name__ == "__main__":
    configure_logging()
    listen(load_settings())
