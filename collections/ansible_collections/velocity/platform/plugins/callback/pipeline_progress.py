# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Velocity platform team
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: pipeline_progress
type: aggregate
short_description: One line per pipeline stage with its duration, and a final summary
description:
  - Prints a line when each play (a pipeline stage) starts and one when it ends, with
    its wall-clock duration and whether any host failed in it.
  - At the end prints a summary of the values the stages published with
    M(ansible.builtin.set_stats) (for example the image digest, the SBOM path, the
    deployed revision and the service URL), and the total duration.
  - Only values published with set_stats are shown, so nothing a task hides with
    C(no_log) can reach the summary unless a role chooses to publish it; roles publish
    digests, paths and names, never secret values.
  - Works alongside the default stdout callback; enable it with
    C(callbacks_enabled = velocity.platform.pipeline_progress).
author: Velocity platform team (@velocity)
requirements:
  - enabled in ansible.cfg or with E(ANSIBLE_CALLBACKS_ENABLED)
"""

import time

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "velocity.platform.pipeline_progress"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._started = time.monotonic()
        self._stage = None
        self._stage_started = None
        self._stage_failed = False
        self._stages = []

    def _finish_stage(self):
        if self._stage is None:
            return
        took = time.monotonic() - self._stage_started
        status = "FAILED" if self._stage_failed else "done"
        self._stages.append((self._stage, status, took))
        color = "red" if self._stage_failed else "green"
        self._display.display(f"[velocity] stage {self._stage:<40} {status} in {took:.1f}s", color=color)
        self._stage = None

    def v2_playbook_on_play_start(self, play):
        self._finish_stage()
        self._stage = play.get_name().strip() or "unnamed play"
        self._stage_started = time.monotonic()
        self._stage_failed = False
        self._display.display(f"[velocity] stage {self._stage} started", color="cyan")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        if not ignore_errors:
            self._stage_failed = True

    def v2_runner_on_unreachable(self, result):
        self._stage_failed = True

    def v2_playbook_on_stats(self, stats):
        self._finish_stage()
        total = time.monotonic() - self._started
        failed = any(status == "FAILED" for dummy, status, dummy2 in self._stages)
        outcome = "FAILED" if failed else "succeeded"
        lines = ["", f"[velocity] pipeline {outcome} in {total:.1f}s"]
        for name, status, took in self._stages:
            lines.append(f"  {name:<44} {status:<7} {took:7.1f}s")
        summary = {}
        for host_stats in (stats.custom or {}).values():
            if isinstance(host_stats, dict):
                summary.update(host_stats)
        published = summary.get("velocity_summary")
        if isinstance(published, dict) and published:
            lines.append("[velocity] summary")
            for key in sorted(published):
                lines.append(f"  {key!s:<22} {published[key]}")
        self._display.display("\n".join(lines), color="red" if failed else "green")
