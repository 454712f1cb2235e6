# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""k8s_read's input checks (before any request) and how a query turns into a get or a list."""

from __future__ import annotations

import pytest

from ansible_collections.velocity.platform.plugins.modules.k8s_read import query_problem, read


def query(**kw):
    base = dict(key="deployment", kind="Deployment", api_version="apps/v1", namespace="velocity", name="app",
                label_selectors=[], field_selectors=[])
    base.update(kw)
    return base


def test_a_good_query_passes():
    assert query_problem(0, query(), {}) is None
    assert query_problem(0, query(name=None, namespace=None), {}) is None


@pytest.mark.parametrize("changes, expected", [
    (dict(key=""), "queries[0]: key is empty"),
    (dict(key="  "), "queries[0]: key is empty"),
    (dict(kind=""), "queries[0] (key 'deployment'): kind is empty"),
    (dict(name="Bad_Name"), "queries[0] (key 'deployment'): name"),
    (dict(namespace="a.b"), "queries[0] (key 'deployment'): namespace"),
])
def test_bad_input_names_the_query_and_the_field(changes, expected):
    problem = query_problem(0, query(**changes), {})
    assert problem is not None and problem.startswith(expected), problem


def test_a_duplicate_key_names_the_query_that_has_it_first():
    problem = query_problem(3, query(), {"deployment": 1})
    assert problem == "queries[3] (key 'deployment'): key is also used by queries[1]; keys must be unique"


class FakeClient:
    """Records the calls a query makes (the reads themselves run against the real API server in
    tests/integration/k8s/test_k8s_read.py)."""

    def __init__(self, found=True):
        self.calls = []
        self.found = found

    def get(self, api_version, kind, name, namespace=None):
        self.calls.append(("get", api_version, kind, name, namespace))
        return {"kind": kind, "metadata": {"name": name}} if self.found else None

    def list(self, api_version, kind, namespace=None, label_selector=None, field_selector=None):
        self.calls.append(("list", api_version, kind, namespace, label_selector, field_selector))
        return [{"kind": kind}]


def test_a_named_query_gets_one_object_or_none():
    client = FakeClient()
    assert read(client, query()) == [{"kind": "Deployment", "metadata": {"name": "app"}}]
    assert client.calls == [("get", "apps/v1", "Deployment", "app", "velocity")]
    assert read(FakeClient(found=False), query()) == []


def test_an_unnamed_query_lists_with_the_selectors_joined():
    client = FakeClient()
    read(client, query(name=None, kind="Pod", api_version="v1", label_selectors=["a=b", "c in (d)"],
                       field_selectors=["status.phase=Running"]))
    assert client.calls == [("list", "v1", "Pod", "velocity", "a=b,c in (d)", "status.phase=Running")]
    client = FakeClient()
    read(client, query(name=None, namespace=None))
    assert client.calls == [("list", "apps/v1", "Deployment", None, None, None)]


def test_secret_values_and_last_applied_are_redacted_other_kinds_untouched():
    from ansible_collections.velocity.platform.plugins.modules.k8s_read import LAST_APPLIED, REDACTED

    class SecretClient(FakeClient):
        def list(self, *args, **kwargs):
            return [{"metadata": {"name": "s", "annotations": {LAST_APPLIED: '{"data":{"k":"Y2FuYXJ5"}}', "a": "b"}},
                     "data": {"k": "Y2FuYXJ5"}, "stringData": {"j": "canary"}}]

    [secret] = read(SecretClient(), query(name=None, kind="Secret", api_version="v1"))
    assert secret["data"] == {"k": REDACTED} and secret["stringData"] == {"j": REDACTED}
    assert secret["metadata"]["annotations"] == {"a": "b"}
    [cm] = read(SecretClient(), query(name=None, kind="ConfigMap", api_version="v1"))
    assert cm["data"] == {"k": "Y2FuYXJ5"}
