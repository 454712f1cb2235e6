# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Velocity platform team
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """The standard attribute descriptions; modules state only C(support) and details."""

    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in check mode and return the changed status it predicts without changing anything.
  diff_mode:
    description: Will return details on what has changed (or would change in check mode), in diff mode.
  platform:
    description: Target OS/families that can be operated against.
    support: N/A
"""
