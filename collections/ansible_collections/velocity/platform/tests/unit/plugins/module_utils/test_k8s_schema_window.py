# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rollback refusal past a migration the previous release cannot live with."""

from __future__ import annotations

from ansible_collections.velocity.platform.plugins.module_utils.k8s.schema_window import schema_window_refusal


def template(head=None, window=None):
    annotations = {}
    if head:
        annotations["velocity.dev/schema-head"] = head
    if window is not None:
        annotations["velocity.dev/schema-window"] = window
    return {"metadata": {"annotations": annotations}, "spec": {}}


def test_compatible_migration_allows_the_rollback():
    assert schema_window_refusal(template("0001_a"), template("0002_b", "0002_b,0001_a"), "1", "2") is None


def test_same_head_allows_the_rollback():
    assert schema_window_refusal(template("0002_b"), template("0002_b", "0002_b"), "1", "2") is None


def test_templates_without_the_annotations_are_not_checked():
    assert schema_window_refusal(template(), template("0002_b", "0002_b"), "1", "2") is None
    assert schema_window_refusal(template("0001_a"), template(), "1", "2") is None


def test_incompatible_migration_refuses_and_says_what_to_do():
    msg = schema_window_refusal(template("0001_a"), template("0002_b", "0002_b"), "1", "2", ["ns/Job/migrate"])
    assert msg.startswith("refused to roll back to revision 1")
    assert "migration 0002_b" in msg and "compatible_with_previous = False" in msg
    assert "its hook ns/Job/migrate ran" in msg
    assert "the Deployment stays at revision 2, the database is at 0002_b," in msg
    assert "`velocity-app migrate --downgrade 0001_a`" in msg and "playbooks/rollback.yml" in msg


def test_without_a_hook_that_ran_the_database_state_is_conditional():
    msg = schema_window_refusal(template("0001_a"), template("0002_b", "0002_b"), "1", "2")
    assert "the database is at 0002_b if that migration ran" in msg
