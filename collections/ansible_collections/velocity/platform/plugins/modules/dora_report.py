#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Velocity platform team
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: dora_report
short_description: Compute DORA metrics from the pipeline's deployment events
version_added: 0.1.0
description:
  - Reads the JSON-lines event sink that the C(velocity.platform.deploy) and
    C(velocity.platform.rollback) roles append to (one event per deployment or rollback)
    and computes the four DORA metrics, deployment frequency, lead time for change,
    change failure rate and time to restore service (MTTR).
  - Returns the metrics as a dictionary and as a readable table; optionally writes
    the report as JSON and the dashboard as one self-contained HTML page, each atomically,
    and reports C(changed) only when a written file's content changes.
  - The sink may also hold C(ci) events (one per CI run, as C(.ci/run) appends them); they
    are summarised under C(report.ci) and drawn on the dashboard, never counted as deployments.
  - A malformed event fails the task with the line number and the field at fault;
    nothing is written then.
author: Velocity platform team (@velocity)
options:
  path:
    description:
      - The event sink, a file of JSON lines.
      - Each event has C(type) (C(deploy), C(rollback) or C(ci)), C(result) (C(success) or
        C(failure)), C(started_at) and C(finished_at) (ISO-8601), and optionally
        C(commit), C(commit_time), C(revision), C(rolled_back_to), C(auto_rollback).
    type: path
    required: true
  output_path:
    description:
      - Where to write the report as JSON (atomically). Omit to only return it.
      - Its directory must exist and O(output_path) must not be a directory nor O(path); otherwise the task fails
        before anything is read or written.
    type: path
  html_path:
    description:
      - Where to write the dashboard, one self-contained HTML page (inline CSS and SVG, no script,
        nothing fetched) with the four metrics, the same per environment, and their history day by
        day with the CI runs. Omit to write none.
      - The same rules as O(output_path) apply.
    type: path
  missing_ok:
    description:
      - Treat a missing O(path) as an empty series instead of failing.
    type: bool
    default: false
extends_documentation_fragment:
  - velocity.platform.module_attributes
attributes:
  check_mode:
    support: full
    details: In check mode the report is computed and returned; O(output_path) and O(html_path) are not written.
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - Definitions follow DORA. Deployment frequency counts successful deploys per day
    over the window from the first to the last event (at least one day). Lead time is
    the median of C(finished_at - commit_time). Change failure rate is failed deploys
    over all deploys (rollbacks are not deploys). Time to restore is the mean, over
    failed deploys, from the failed deploy's start to its own end when it rolled
    itself back, or else to the end of the next successful deploy or rollback.
"""

EXAMPLES = r"""
- name: Compute DORA metrics from the local sink
  velocity.platform.dora_report:
    path: /var/lib/velocity/dora-events.jsonl
    output_path: /var/lib/velocity/dora-report.json
  register: dora

- name: Show them
  ansible.builtin.debug:
    msg: "{{ dora.table }}"

- name: Publish the dashboard next to the JSON report
  velocity.platform.dora_report:
    path: /var/lib/velocity/dora-events.jsonl
    html_path: /var/www/velocity/dora.html
"""

RETURN = r"""
report:
  description: The metrics.
  returned: always
  type: dict
  contains:
    deployments:
      description: Deploy events in the window.
      type: int
      returned: always
    deployment_frequency_per_day:
      description: Successful deploys per day.
      type: float
      returned: always
    lead_time_for_change_seconds:
      description: Median lead time, null without commit times.
      type: float
      returned: always
    change_failure_rate:
      description: Failed deploys over all deploys, 0 to 1.
      type: float
      returned: always
    time_to_restore_seconds:
      description: Mean time to restore, null without restored failures.
      type: float
      returned: always
    unrestored_failures:
      description: Failed deploys with no later success.
      type: int
      returned: always
    ci:
      description:
        - The CI runs in the sink (C(ci) events) - C(runs), C(passed), C(failed), C(pass_rate) (null without
          runs), C(median_duration_seconds), C(last_result), C(last_commit), C(last_finished_at).
      type: dict
      returned: always
  sample:
    deployments: 4
    successful_deployments: 3
    failed_deployments: 1
    deployment_frequency_per_day: 1.5
    lead_time_for_change_seconds: 3600.0
    change_failure_rate: 0.25
    time_to_restore_seconds: 300.0
table:
  description: The same metrics as a readable table.
  returned: always
  type: str
events:
  description: How many events were read.
  returned: always
  type: int
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.velocity.platform.plugins.module_utils.common.files import atomic_write
from ansible_collections.velocity.platform.plugins.module_utils.common.paths import PathRefused, check_output_file
from ansible_collections.velocity.platform.plugins.module_utils.metrics.dashboard import render_html
from ansible_collections.velocity.platform.plugins.module_utils.metrics.dora import (
    DoraError,
    compute,
    read_events,
    render_table,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            output_path=dict(type="path"),
            html_path=dict(type="path"),
            missing_ok=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    path = module.params["path"]
    output = module.params["output_path"]
    html_path = module.params["html_path"]
    # Bad input fails here, before anything is read or written.
    if not path:
        module.fail_json(msg="path is empty: give the event sink, a file of JSON lines")
    for name, target in (("output_path", output), ("html_path", html_path)):
        if not target:
            continue
        try:
            check_output_file(name, target)
        except PathRefused as exc:
            module.fail_json(msg=to_native(exc))
        if os.path.realpath(target) == os.path.realpath(path):
            module.fail_json(msg=f"{name} {target} is the event sink itself (path): write it to another file")
    if output and html_path and os.path.realpath(output) == os.path.realpath(html_path):
        module.fail_json(msg=f"output_path and html_path are the same file {output}: give each its own")
    if os.path.isdir(path):
        example = os.path.join(path, "events.jsonl")
        module.fail_json(msg=f"path {path} is a directory: give the event sink file (JSON lines), e.g. {example}")
    if not os.path.exists(path):
        if not module.params["missing_ok"]:
            module.fail_json(msg=f"path: the event sink {path} does not exist; run a deploy first or set "
                                 "missing_ok=true")
        lines = []
    else:
        try:
            with open(path, encoding="utf-8") as handle:
                lines = handle.readlines()
        except (OSError, UnicodeDecodeError) as exc:
            module.fail_json(msg=f"path: cannot read the event sink {path} as UTF-8 text ({to_native(exc)}); give the "
                                 "JSON-lines file the deploy and rollback roles append to")
    try:
        events = read_events(lines, source=path)
    except DoraError as exc:
        module.fail_json(msg=f"path: {to_native(exc)}")
    report = compute(events)
    result = dict(changed=False, report=report, table=render_table(report), events=len(events))

    writes = []
    if output:
        writes.append(("output_path", output, json.dumps(report, indent=2, sort_keys=True) + "\n"))
    if html_path:
        writes.append(("html_path", html_path, render_html(events, report)))
    for name, target, text in writes:
        current = None
        if os.path.exists(target):
            with open(target, "rb") as handle:
                current = handle.read().decode("utf-8", "replace")
        if current != text:
            result["changed"] = True
            if not module.check_mode:
                try:
                    atomic_write(target, text.encode("utf-8"), 0o644)
                except OSError as exc:
                    module.fail_json(msg=f"{name}: cannot write {target}: {to_native(exc)}", **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
