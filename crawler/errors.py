"""One error tree for everything the census refuses to do.

A ``CensusError`` is a problem the user can fix (bad input, a locked database); the CLI prints
its message on one line and exits non-zero.  Network outcomes such as timeouts and refusals are
*not* errors: they are values stored in the census.
"""


class CensusError(Exception):
    """The census cannot go on."""


class BadZoneName(CensusError):
    """Not a valid zone name."""


class ProfileError(CensusError):
    """The profile is missing or malformed."""


class DatabaseLocked(CensusError):
    """Another census run is writing this database."""


class RunNotFound(CensusError):
    """No such run in the census."""


class IncomparableRuns(CensusError):
    """These two runs cannot be compared."""


class TransferError(CensusError):
    """A zone transfer stream is malformed or stopped halfway."""


class RedisUnavailable(CensusError):
    """The Redis of a distributed crawl cannot be reached."""


class BadDomainName(CensusError):
    """Not a valid domain name."""
