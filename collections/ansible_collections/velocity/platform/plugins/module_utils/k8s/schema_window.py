# -*- coding: utf-8 -*-
# Copyright: Velocity platform team
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The database schema window (expand/contract) seen from the pod templates.

A release's pod template may carry two annotations, read from its image
(`velocity-app schema-info`):

- ``velocity.dev/schema-head``: the Alembic revision the release's code needs;
- ``velocity.dev/schema-window``: the code schema heads, comma-separated, that can still
  run once the release's migration has run (its head, then each older head reached through
  migrations declared ``compatible_with_previous = True``).

Rolling a Deployment back from a release whose migration ran to a release whose head is
not in that window would put code on a schema it cannot live with: the rollback is refused,
and the message says what to do. Templates without the annotations are not checked.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

HEAD_ANNOTATION = "velocity.dev/schema-head"
WINDOW_ANNOTATION = "velocity.dev/schema-window"


def _annotations(template):
    return ((template or {}).get("metadata") or {}).get("annotations") or {}


def schema_window_refusal(target_template, failed_template, target_revision, failed_revision, migrated=None):
    """A message refusing to roll back from ``failed_template`` to ``target_template``, or None when safe.

    ``migrated``: the hooks of this run that succeeded (refs), named in the message when given.
    """
    target_head = _annotations(target_template).get(HEAD_ANNOTATION)
    failed = _annotations(failed_template)
    failed_head = failed.get(HEAD_ANNOTATION)
    window = [h.strip() for h in (failed.get(WINDOW_ANNOTATION) or "").split(",") if h.strip()]
    if not target_head or not failed_head or not window or target_head in window:
        return None
    ran = (" (its hook %s ran in this sync)" % ", ".join(migrated)) if migrated else ""
    db_state = failed_head if migrated else "%s if that migration ran" % failed_head
    return ("refused to roll back to revision %s: its code needs schema %s, but migration %s of the failed "
            "revision %s%s is declared incompatible with it (compatible_with_previous = False; the schema "
            "window admits only %s). State: the Deployment stays at revision %s, the database is at %s, and the "
            "previous release's pods report unready on /readyz. To go back: downgrade the database first with "
            "the failed release's image, `velocity-app migrate --downgrade %s`, then roll back "
            "(playbooks/rollback.yml); or fix forward. Runbook: database-migration rollback"
            % (target_revision, target_head, failed_head, failed_revision, ran, ", ".join(window),
               failed_revision, db_state, target_head))
