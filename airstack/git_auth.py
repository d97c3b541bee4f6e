"""The credential git uses to reach the DAG bundle's repository over HTTPS (push, ls-remote, fetch).

A deploy moves the bundle's deploy ref with ``git push`` to the ``https://`` URL of deploy.yaml's
``airflow.dag_bundle.repository`` (:mod:`airstack.git_bundle`). CI holds a token for it in its context:
``AIRSTACK_GIT_TOKEN``, a fine-grained personal access token (or a GitHub App installation token) limited to
that one repository with *Contents: read and write*, and ``AIRSTACK_GIT_USERNAME`` where the host wants a
particular user name (default ``x-access-token``, which GitHub accepts with any token).

The token is handed to git by a credential helper that reads it from git's environment when git asks:
it is never in an argv (the helper's text names the variable, not its value; ``echo`` is the shell's
builtin), never on disk (the helper list is reset first, so no ``store`` or ``cache`` helper of the user's
config keeps it), and never logged (the values :func:`env` adds hold no secret). Without a token nothing is
added: a laptop's own git credentials, or an SSH URL, work as before. ``GIT_TERMINAL_PROMPT=0`` makes a
refused token an error, not a prompt that waits forever.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

TOKEN_ENV = "AIRSTACK_GIT_TOKEN"
USER_ENV = "AIRSTACK_GIT_USERNAME"
DEFAULT_USER = "x-access-token"
# git runs a helper that starts with "!" through its shell, with "get", "store" or "erase" as its argument, in
# its own environment: the token stays a variable.
HELPER = ('!f() { test "$1" = get || return 0; echo "username=${%s:-%s}"; echo "password=${%s}"; }; f'
          % (USER_ENV, DEFAULT_USER, TOKEN_ENV))


def env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """What a git command that may reach the bundle's repository adds to its environment (pure): the helper,
    when ``environ`` (default: this process's) holds a token; else nothing."""
    environ = os.environ if environ is None else environ
    if not environ.get(TOKEN_ENV):
        return {}
    return {"GIT_CONFIG_COUNT": "2",
            "GIT_CONFIG_KEY_0": "credential.helper", "GIT_CONFIG_VALUE_0": "",  # resets the list: no store, no cache
            "GIT_CONFIG_KEY_1": "credential.helper", "GIT_CONFIG_VALUE_1": HELPER,
            "GIT_TERMINAL_PROMPT": "0"}
