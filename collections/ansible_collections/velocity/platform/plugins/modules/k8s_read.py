#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: Velocity platform team
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: k8s_read
short_description: Read several Kubernetes objects and lists in one task, concurrently
version_added: 0.2.0
description:
  - Runs every read of O(queries) in one module run, over one API client, several requests at a time, and
    returns each query's objects under its O(queries[].key). It changes nothing.
  - A query with O(queries[].name) reads that object (an empty list when it does not exist, as
    C(kubernetes.core.k8s_info) answers); without, it lists the kind, narrowed by namespace, label and field
    selectors.
  - One task instead of one C(kubernetes.core.k8s_info) task per read; each task pays for a module start and the
    discovery of the kinds it reads. The pipeline's verify stage reads its release (four reads) this way
    in about 1 s, where four C(kubernetes.core.k8s_info) tasks took about 11 s on the same machine.
  - B(Secret values are never returned.) A Secret (C(v1)) comes back with its keys, each value in C(data) and
    C(stringData) replaced by V(<redacted>), and without the C(kubectl.kubernetes.io/last-applied-configuration)
    annotation (which can hold the values), so no verbosity shows a credential.
  - Bad input (a duplicate or empty key, an invalid name or namespace) fails the task before the API server is
    contacted, naming the query. A kind the API server does not serve fails naming the query's key.
  - O(field_manager) is accepted, so that module defaults set for the group C(velocity.platform.k8s) apply here
    too, and unused (nothing is applied).
author:
  - Velocity platform team (@velocity)
options:
  queries:
    description: The reads, each returned under its O(queries[].key).
    type: list
    elements: dict
    required: true
    suboptions:
      key:
        description:
          - Name of this query's result in RV(resources); unique within the task.
        type: str
        required: true
      kind:
        description: Kind to read, for example V(Deployment) or V(EndpointSlice).
        type: str
        required: true
      api_version:
        description: API version of the kind, for example V(apps/v1) or V(discovery.k8s.io/v1).
        type: str
        default: v1
      namespace:
        description:
          - Namespace to read in, a DNS-1123 label; omit for cluster-scoped kinds or to list across namespaces.
        type: str
      name:
        description:
          - Name of one object to read; omit to list.
        type: str
      label_selectors:
        description: Label selectors, joined with commas (all must match), for example V(app=web).
        type: list
        elements: str
        default: []
      field_selectors:
        description: Field selectors, joined with commas (all must match), for example V(status.phase=Running).
        type: list
        elements: str
        default: []
extends_documentation_fragment:
  - velocity.platform.k8s
attributes:
  check_mode:
    description: Reads the same in check mode; it never changes anything.
    support: full
  diff_mode:
    description: Nothing to show; it never changes anything.
    support: none
  platform:
    description: Runs where it can reach the API server (the controller for C(localhost)).
    support: full
    platforms: posix
seealso:
  - module: kubernetes.core.k8s_info
  - module: velocity.platform.manifest_apply
"""

EXAMPLES = r"""
- name: Read a release in one task
  velocity.platform.k8s_read:
    kubeconfig: /tmp/velocity/k8s/kubeconfig
    queries:
      - key: deployment
        api_version: apps/v1
        kind: Deployment
        namespace: velocity
        name: velocity-app
      - key: endpoints
        api_version: discovery.k8s.io/v1
        kind: EndpointSlice
        namespace: velocity
        label_selectors: [kubernetes.io/service-name=velocity-app]
      - key: pods
        kind: Pod
        namespace: velocity
        label_selectors: [app.kubernetes.io/name=velocity-app]
        field_selectors: [status.phase=Running]
  register: release

- name: Ready replicas
  ansible.builtin.debug:
    msg: "{{ (release.resources.deployment | first).status.readyReplicas | default(0) }}"
"""

RETURN = r"""
resources:
  description:
    - Each query's objects under its key, as the API server returns them; a named object that does not exist
      gives an empty list.
  returned: success
  type: dict
  sample: {deployment: [{kind: Deployment, metadata: {name: velocity-app, namespace: velocity}}], pods: []}
requests:
  description: Requests sent to the API server for the reads (discovery not counted).
  returned: success
  type: int
  sample: 4
duration_s:
  description: Seconds the reads took (the client's start and discovery included).
  returned: success
  type: float
  sample: 0.12
"""

import time

from ansible.module_utils.common.text.converters import to_text

from ansible_collections.velocity.platform.plugins.module_utils.common.names import name_problem
from ansible_collections.velocity.platform.plugins.module_utils.k8s.apply import concurrently, first_error
from ansible_collections.velocity.platform.plugins.module_utils.k8s.client import K8sApiError, K8sClient, k8s_module

QUERY_SPEC = dict(
    key=dict(type="str", required=True, no_log=False),
    kind=dict(type="str", required=True),
    api_version=dict(type="str", default="v1"),
    namespace=dict(type="str"),
    name=dict(type="str"),
    label_selectors=dict(type="list", elements="str", default=[]),
    field_selectors=dict(type="list", elements="str", default=[]),
)


def query_problem(index, query, seen):
    """What is wrong with queries[index], or None."""
    where = f"queries[{index}]"
    key = (query.get("key") or "").strip()
    if not key:
        return f"{where}: key is empty; give each query a unique key (its result's name in resources)"
    where = f"{where} (key {key!r})"
    if key in seen:
        return f"{where}: key is also used by queries[{seen[key]}]; keys must be unique"
    if not (query.get("kind") or "").strip():
        return f"{where}: kind is empty; name the kind to read, for example Deployment"
    if query.get("name") is not None:
        problem = name_problem(query["name"], "name")
        if problem:
            return f"{where}: {problem}"
    if query.get("namespace") is not None:
        problem = name_problem(query["namespace"], "namespace", label=True)
        if problem:
            return f"{where}: {problem}"
    return None


REDACTED = "<redacted>"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def is_secret(query):
    return query["kind"] == "Secret" and query["api_version"] == "v1"


def redacted(obj):
    """A Secret without its values (keys kept). A list's items carry no kind: the caller knows it is a Secret."""
    obj = dict(obj)
    for field in ("data", "stringData"):
        if isinstance(obj.get(field), dict):
            obj[field] = {key: REDACTED for key in obj[field]}
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    if LAST_APPLIED in annotations:
        obj["metadata"] = dict(obj["metadata"], annotations={k: v for k, v in annotations.items() if k != LAST_APPLIED})
    return obj


def read(client, query):
    """The objects one query names ([object] or [] for a name, the list otherwise), Secret values redacted."""
    if query.get("name"):
        obj = client.get(query["api_version"], query["kind"], query["name"], query.get("namespace"))
        objs = [obj] if obj is not None else []
    else:
        objs = client.list(query["api_version"], query["kind"], namespace=query.get("namespace"),
                           label_selector=",".join(query["label_selectors"]) or None,
                           field_selector=",".join(query["field_selectors"]) or None)
    return [redacted(obj) for obj in objs] if is_secret(query) else objs


def main():
    module = k8s_module(dict(queries=dict(type="list", elements="dict", required=True, options=QUERY_SPEC),
                             field_manager=dict(type="str", default="velocity")),
                        supports_check_mode=True)
    queries = module.params["queries"]
    seen = {}
    for index, query in enumerate(queries):
        problem = query_problem(index, query, seen)
        if problem:
            module.fail_json(msg=problem)
        query["key"] = query["key"].strip()
        seen[query["key"]] = index
    started = time.monotonic()
    client = None
    try:
        client = K8sClient.from_params(module.params)
        # Discovery first, one kind at a time (it fills a shared cache), then the reads concurrently.
        for query in queries:
            try:
                client.resource(query["api_version"], query["kind"])
            except K8sApiError as exc:
                raise K8sApiError(f"query {query['key']!r}: {exc.message}", status=exc.status,
                                  unreachable=exc.unreachable) from None
        outcomes = concurrently(lambda q: read(client, q), queries)
        first_error(outcomes)
        resources = {query["key"]: result for query, (result, _error) in zip(queries, outcomes)}
    except K8sApiError as exc:
        module.fail_json(msg=to_text(exc.message))
    finally:
        if client is not None:
            client.close()
    module.exit_json(changed=False, resources=resources, requests=len(queries),
                     duration_s=round(time.monotonic() - started, 3))


if __name__ == "__main__":
    main()
