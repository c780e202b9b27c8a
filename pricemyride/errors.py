"""Errors raised by PriceMyRide. Each carries the exit code the command line ends with (sysexits.h).

PriceMyRideError                 70 EX_SOFTWARE
├── UsageError                   64 EX_USAGE      an option's value is out of its range
├── InvalidListing               65 EX_DATAERR    a listing event broke the contract (goes to the dead-letter topic)
├── DataFileError                65 EX_DATAERR    a data file is unreadable or not in the Craigslist format
│   └── NoInputFile              66 EX_NOINPUT    a data file is not there
├── TrainingRefused              65 EX_DATAERR    too few usable rows to train a model worth registering
├── ModelNotFound                69 EX_UNAVAILABLE the registry has no model behind the requested alias or version
├── ModelLoadFailed              69 EX_UNAVAILABLE a registered version could not be loaded (registry down, corrupt)
├── ServiceUnavailable           69 EX_UNAVAILABLE Kafka, Postgres or MLflow did not answer in time
├── OutputError                  73 EX_CANTCREAT  an output file cannot be written where asked
├── IncompatibleModel            78 EX_CONFIG     a registered model was built by feature code this code cannot run
└── ConfigError                  78 EX_CONFIG     the settings (environment, .env) break a rule
"""

from typing import ClassVar


class PriceMyRideError(Exception):
    """Base class of every error this project raises on purpose."""

    exit_code: ClassVar[int] = 70


class UsageError(PriceMyRideError):
    """A command-line option's value is outside what the command accepts."""

    exit_code = 64


class InvalidListing(PriceMyRideError):
    """A listing event broke the event contract; the message is the reason."""

    exit_code = 65


class DataFileError(PriceMyRideError):
    """A data file is unreadable or lacks the Craigslist columns."""

    exit_code = 65


class NoInputFile(DataFileError):
    """A data file named on the command line or in the settings does not exist."""

    exit_code = 66


class TrainingRefused(PriceMyRideError):
    """The data leaves too few usable rows, or the options too little model, to register a version."""

    exit_code = 65


class ModelNotFound(PriceMyRideError):
    """The model registry has no version behind the requested alias or number."""

    exit_code = 69


class ModelLoadFailed(PriceMyRideError):
    """A registered model version could not be fetched or unpickled; the message says which and why."""

    exit_code = 69


class ServiceUnavailable(PriceMyRideError):
    """A service (Kafka, Postgres, MLflow) did not answer within the time allowed."""

    exit_code = 69


class OutputError(PriceMyRideError):
    """An output path is a directory, the input itself, of an unknown kind, or not writable."""

    exit_code = 73


class UncrownedModel(ModelLoadFailed):
    """The champion alias names a version whose promotion the gate did not record in ``model_events``."""


class IncompatibleModel(PriceMyRideError):
    """A registered model was trained with a model format this code does not produce."""

    exit_code = 78


class ConfigError(PriceMyRideError):
    """The settings break a rule; the message names the variable and the rule, never a secret's value."""

    exit_code = 78
