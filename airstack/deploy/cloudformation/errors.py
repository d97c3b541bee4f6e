"""The CloudFormation deploy's errors: each class holds its message template (``fmt``), filled from keywords.

Every message is one line naming the stack, except :class:`StackFailedError`'s, which lists the failed
events (see :mod:`.report`) and ends with the command that shows all of them.
"""

from __future__ import annotations

from airstack.errors import AirstackError, ConfigError


class DeployError(AirstackError):
    """A deploy step failed or was declined; the message says what happened and what to look at."""

    fmt = "{stack}: {detail}"

    def __init__(self, **fields: object) -> None:
        super().__init__(self.fmt.format(**fields))
        self.fields = fields


class AwsCallError(DeployError):
    """An AWS API call (or the credentials chain) failed."""

    fmt = "{stack}: {error}"


class CreateChangeSetError(DeployError):
    fmt = "{stack}: create_change_set: {error}"


class RollbackCompleteError(DeployError):
    fmt = ("{stack}: its creation failed (ROLLBACK_COMPLETE) and it cannot be updated: delete it "
           "(aws cloudformation delete-stack --stack-name {stack} --region {region}) and deploy again")


class ChangeSetFailedError(DeployError):
    fmt = "{stack}: the change set failed: {reason}"


class ChangeSetTimeoutError(DeployError):
    fmt = "{stack}: the change set {change_set} is still {status} after {polls} polls: {error}"


class DeclinedError(DeployError):
    fmt = "{stack}: declined: the change set was deleted, nothing was changed"


class DestroyDeclinedError(DeployError):
    fmt = "{stack}: deletion declined; it and the stacks before it are kept"


class StackFailedError(DeployError):
    """An execution or a deletion failed: the headline, the stack's failed events, the events command."""

    fmt = "{report}"


class TemplateTooLargeError(ConfigError):
    fmt = "{template}: the template is over {limit} bytes, the limit of a TemplateBody: split the stack"

    def __init__(self, template: object, limit: int) -> None:
        super().__init__(self.fmt.format(template=template, limit=limit))


class UnresolvedParameterError(ConfigError):
    """A required parameter has no value: not in the parameters file, not an earlier stack's output."""

    fmt = "{where}{stack}.{parameter}: required by {stack_name} (no Default): {why}"
    from_earlier = ("expected as an output of the earlier stack {earlier}, which returned none "
                    "(not deployed yet, or its deploy did not report outputs)")
    from_nowhere = "not in the parameters file, and no earlier stack outputs {parameter}"

    def __init__(self, *, where: str, stack: str, stack_name: str, parameter: str, expected_from: str | None) -> None:
        template = self.from_earlier if expected_from else self.from_nowhere
        why = template.format(earlier=expected_from, parameter=parameter)
        super().__init__(self.fmt.format(where=where, stack=stack, parameter=parameter, stack_name=stack_name,
                                         why=why))
        self.stack = stack
        self.parameter = parameter
        self.expected_from = expected_from


def client_error_code(exc: Exception) -> str:
    """The ``Error.Code`` of a botocore ClientError ("" for anything else)."""
    return getattr(exc, "response", {}).get("Error", {}).get("Code", "")


def client_error_message(exc: Exception) -> str:
    """``Code: Message`` of a botocore ClientError (the exception's type and text for anything else)."""
    error = getattr(exc, "response", {}).get("Error", {})
    return f"{error.get('Code', type(exc).__name__)}: {error.get('Message', str(exc))}"
