"""Errors raised by PriceMyRide.

PriceMyRideError
├── InvalidListing      a listing event broke the contract (goes to the dead-letter topic)
├── ModelNotFound       the registry has no model behind the requested alias
├── IncompatibleModel   a registered model was built by feature code this code cannot run
├── ModelLoadFailed     a registered version could not be loaded (registry unreachable, corrupt artifact)
└── DataFileError       a data file is missing or not in the Craigslist format
"""


class PriceMyRideError(Exception):
    """Base class of every error this project raises on purpose."""


class InvalidListing(PriceMyRideError):
    """A listing event broke the event contract; the message is the reason."""


class ModelNotFound(PriceMyRideError):
    """The model registry has no version behind the requested alias."""


class IncompatibleModel(PriceMyRideError):
    """A registered model was trained with a model format this code does not produce."""


class ModelLoadFailed(PriceMyRideError):
    """A registered model version could not be fetched or unpickled; the message says which and why."""


class DataFileError(PriceMyRideError):
    """A data file is missing, unreadable or lacks the Craigslist columns."""
