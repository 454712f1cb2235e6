# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pure parts of sets that bring their own CRDs, and of the Argo CD ownership check."""

from __future__ import annotations

from ansible_collections.velocity.platform.plugins.module_utils.k8s.apply import argocd_owner, set_kinds
from ansible_collections.velocity.platform.plugins.module_utils.k8s.waiter import crd_established


def crd(scope="Namespaced", versions=("v1", "v1beta1")):
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": scope, "names": {"kind": "Widget", "plural": "widgets"},
                     "versions": [{"name": v} for v in versions]}}


def test_set_kinds_lists_every_served_version_with_its_scope():
    kinds = set_kinds([crd(), crd("Cluster", ("v2",)), {"apiVersion": "v1", "kind": "ConfigMap"}])
    assert kinds == {("example.com/v1", "Widget"): True, ("example.com/v1beta1", "Widget"): True,
                     ("example.com/v2", "Widget"): False}


def test_argocd_owner_reads_tracking_annotation_then_field_manager():
    assert argocd_owner(None) is None
    tracked = {"metadata": {"annotations": {"argocd.argoproj.io/tracking-id": "shop:apps/Deployment:ns/a"}}}
    assert argocd_owner(tracked) == "shop"
    managed = {"metadata": {"labels": {"app.kubernetes.io/instance": "billing"},
                            "managedFields": [{"manager": "argocd-controller"}]}}
    assert argocd_owner(managed) == "billing"
    # Label tracking alone is also what Helm writes: not proof of Argo CD.
    helm = {"metadata": {"labels": {"app.kubernetes.io/instance": "billing"}, "managedFields": [{"manager": "helm"}]}}
    assert argocd_owner(helm) is None
    # Argo CD's sync-wave and hook annotations are ours too: not ownership.
    ours = {"metadata": {"annotations": {"argocd.argoproj.io/sync-wave": "1"}, "managedFields": [{"manager": "velocity"}]}}
    assert argocd_owner(ours) is None


def test_crd_established_waits_then_fails_fast_on_rejected_names():
    pending = {"status": {"conditions": [{"type": "NamesAccepted", "status": "True"}]}}
    assert crd_established(pending)[:2] == (False, False)
    ready = {"status": {"conditions": [{"type": "Established", "status": "True"}]}}
    assert crd_established(ready)[:2] == (True, False)
    clash = {"status": {"conditions": [{"type": "NamesAccepted", "status": "False", "message": "plural taken"}]}}
    status = crd_established(clash)
    assert status.failed and "plural taken" in status.message
