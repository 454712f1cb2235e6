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

from __future__ import annotations

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
    ran = f" (its hook {', '.join(migrated)} ran in this sync)" if migrated else ""
    db_state = failed_head if migrated else f"{failed_head} if that migration ran"
    admitted = ", ".join(window)
    return (f"refused to roll back to revision {target_revision}: its code needs schema {target_head}, but migration "
            f"{failed_head} of the failed revision {failed_revision}{ran} is declared incompatible with it "
            f"(compatible_with_previous = False; the schema window admits only {admitted}). State: the Deployment "
            f"stays at revision {failed_revision}, the database is at {db_state}, and the previous release's pods "
            "report unready on /readyz. To go back: downgrade the database first with the failed release's image, "
            f"`velocity-app migrate --downgrade {target_head}`, then roll back (playbooks/rollback.yml); or fix "
            "forward. Runbook: database-migration rollback")
