"""Deploy the CloudFormation stacks of infra/cloudformation/ through change sets.

It behaves like ``aws cloudformation deploy`` and sceptre. For each stack, in order:

1. its parameters are the environment's parameter file values, plus the Outputs of earlier stacks
   for the template's parameters of the same name (:func:`resolve_parameters`);
2. a change set is created and described (:meth:`ChangeSets.plan`): identical input is "no changes", not a
   failure;
3. the change set is shown (:func:`print_plan`), then executed or deleted (:meth:`ChangeSets.execute`,
   :meth:`ChangeSets.discard`) as ``confirm`` decides; a failed execution is reported with its failed events.

No change set is left behind unexecuted, whatever happens (errors and Ctrl-C included), and a
stack that only existed to hold a CREATE change set (``REVIEW_IN_PROGRESS``) is deleted with it.

Modules, each owning one thing:

- ``templates``: pure template handling: templates, the parameters file, :class:`StackSpec`, parameter
  resolution from earlier stacks' outputs (no AWS call);
- ``changesets``: :class:`ChangeSets` (a CloudFormation client and :class:`Waits`; one method per step),
  :class:`Plan` and its :class:`ChangeSetStatus`;
- ``report``: a change set as a table, the failed-events report;
- ``errors``: :class:`DeployError` and its subclasses, each with its message template;
- ``stacks``: :func:`deploy` and :func:`destroy` of an environment's stacks in order.

The client comes from :mod:`airstack.deploy.aws` (tests: one pointed at moto, or a Stubber's).
"""

from airstack.deploy.cloudformation.changesets import (
    DEFAULT_WAITS,
    Change,
    ChangeSets,
    ChangeSetStatus,
    Plan,
    Waits,
)
from airstack.deploy.cloudformation.errors import DeployError, UnresolvedParameterError
from airstack.deploy.cloudformation.report import print_plan, render_changes
from airstack.deploy.cloudformation.stacks import deploy, destroy
from airstack.deploy.cloudformation.templates import (
    StackSpec,
    capabilities_of,
    load_stacks,
    load_template,
    resolve_parameters,
)

__all__ = ["DEFAULT_WAITS", "Change", "ChangeSetStatus", "ChangeSets", "DeployError", "Plan", "StackSpec",
           "UnresolvedParameterError", "Waits", "capabilities_of", "deploy", "destroy", "load_stacks",
           "load_template", "print_plan", "render_changes", "resolve_parameters"]
