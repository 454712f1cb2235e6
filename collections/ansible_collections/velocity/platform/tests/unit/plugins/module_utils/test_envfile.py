# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One writer and one reader for env files: what is written is what is read, in both formats."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.velocity.platform.plugins.module_utils.common import envfile

NAMES = st.from_regex(r"[A-Z_][A-Z0-9_]{0,12}", fullmatch=True)
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)


@settings(max_examples=200, deadline=None)
@given(values=st.dictionaries(NAMES, TEXT.filter(lambda v: "\n" not in v and "\r" not in v), max_size=5))
def test_docker_format_round_trips_literally(values):
    text = envfile.render(values, "docker").decode()
    assert envfile.parse(text) == values


@settings(max_examples=200, deadline=None)
@given(values=st.dictionaries(NAMES, TEXT, max_size=5))
def test_shell_format_round_trips_any_value(values):
    text = envfile.render(values, "shell").decode()
    assert envfile.parse(text) == values


def test_quotes_are_data_in_docker_format():
    assert envfile.parse("A='x'\nB=\"y\"\nC=a=b\n") == {"A": "'x'", "B": '"y"', "C": "a=b"}


def test_errors_name_the_line_not_its_content():
    with pytest.raises(envfile.EnvFileError) as exc:
        envfile.parse("A=1\ns3cr3t-value\n", "app.env")
    assert "app.env line 2" in str(exc.value) and "s3cr3t" not in str(exc.value)
    with pytest.raises(envfile.EnvFileError, match="line break"):
        envfile.render({"A": "x\ny"}, "docker")
