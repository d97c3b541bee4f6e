"""The package's error types.

Expected failures raise a subclass of :class:`AirstackError` whose message tells the user
what to do. Entry points (``main()`` functions, the noxfile) turn them into one line on
stderr and a non-zero exit, without a traceback. Anything else keeps its traceback.
"""


class AirstackError(Exception):
    """An expected failure; the message is shown to the user as one line."""


class ConfigError(AirstackError):
    """A configuration file is invalid. The message names the file and the field."""


class CommandNotFoundError(AirstackError):
    """An external program is not installed."""


class CommandFailedError(AirstackError):
    """An external program exited with a non-zero status."""

    def __init__(self, message: str, returncode: int, stderr: str = "") -> None:
        super().__init__(message)
        self.returncode = returncode
        self.stderr = stderr


class PostgresUnavailableError(AirstackError):
    """No way to get a Postgres server for the tests."""


class DockerError(AirstackError):
    """A call to the Docker daemon failed (raised by :mod:`airstack.docker_client` only).

    The message names the call, the image or container, and what to do."""


class DockerNotAvailableError(DockerError):
    """No Docker daemon answers (not installed, not running, or gone while it was being used)."""


class DockerNotFoundError(DockerError):
    """The image, container, volume or network named is not on the daemon (or in its registry)."""


class DockerRefusedError(DockerError):
    """The daemon answered with an error (a conflict, a bad request, a registry that refused a push...)."""


class ConfirmationNeededError(AirstackError):
    """A change needs a person's yes, and nobody can answer here (no terminal, or CI): pass --yes."""


class LocalEnvError(AirstackError):
    """The local environment cannot start, stop or answer as asked."""
