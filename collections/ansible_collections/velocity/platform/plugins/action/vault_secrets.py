# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Velocity platform team
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action for velocity.platform.vault_secrets.

With a local connection (the usual case: the deploy runs on the controller),
the task runs in-process: no module payload to build, no Python to start,
so a task costs about what its Vault round trips cost. The same
``run_secrets`` as the module does the work, with the module's argument spec.
For any other connection the module runs on the target as usual.
"""
from __future__ import annotations

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.parameters import remove_values
from ansible.module_utils.errors import UnsupportedError
from ansible.plugins.action import ActionBase

from ansible_collections.velocity.platform.plugins.module_utils.vault.module import raw_type_problem
from ansible_collections.velocity.platform.plugins.module_utils.vault.tasks import (
    SECRETS_ARGUMENT_SPEC,
    SECRETS_REQUIRED_BY,
    run_secrets,
)


def _leaves(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _leaves(item)
    elif value not in (None, ""):
        yield str(value)


def secret_args(args):
    """The values given to no_log options (token, secret_id, jwt...), whatever their type."""
    values = set()
    for name, spec in SECRETS_ARGUMENT_SPEC.items():
        if spec.get("no_log"):
            for key in [name, *list(spec.get("aliases") or [])]:
                values.update(_leaves(args.get(key)))
    return values


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        if self._connection.transport != "local" or self._task.delegate_to not in (None, "localhost", "127.0.0.1"):
            result.update(self._execute_module(module_name="velocity.platform.vault_secrets",
                                               module_args=self._task.args, task_vars=task_vars))
            return result
        problem = raw_type_problem(SECRETS_ARGUMENT_SPEC, self._task.args)
        if problem:
            result.update(failed=True, msg=problem)
            return result
        validator = ArgumentSpecValidator(SECRETS_ARGUMENT_SPEC, required_by=SECRETS_REQUIRED_BY)
        validated = validator.validate(self._task.args)
        if validated.error_messages:
            messages = []
            for error in validated.errors.errors:
                if isinstance(error, UnsupportedError):  # worded as AnsibleModule words it
                    messages.append(f"Unsupported parameters for ({self._task.action}) module: {error.msg}")
                else:
                    messages.append(error.msg)
            # Validation messages may quote a value; never one given to a no_log option.
            result.update(failed=True, msg=remove_values("; ".join(messages), secret_args(self._task.args)))
            return result
        outcome, _hidden = run_secrets(validated.validated_parameters, bool(self._task.check_mode),
                                       bool(self._task.diff))
        result.update(outcome)
        return result
