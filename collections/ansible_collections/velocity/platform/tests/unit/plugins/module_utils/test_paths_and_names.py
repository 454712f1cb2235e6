# -*- coding: utf-8 -*-
# Copyright: (c) 2026, Velocity platform team
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The allowed roots (paths.py) and the Kubernetes name rules (k8s_names.py)."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from ansible_collections.velocity.platform.plugins.module_utils.common import names as k8s_names
from ansible_collections.velocity.platform.plugins.module_utils.common import paths

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


@pytest.fixture
def tree(tmp_path):
    """A Git working tree that ignores ignored/."""
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / ".gitignore").write_text("ignored/\n")
    return repo


@pytest.mark.parametrize("value", ["a", "velocity-app", "velocity.app-1", "a" * 253, "0abc"])
def test_valid_object_names(value):
    assert k8s_names.name_problem(value, "name") is None


@pytest.mark.parametrize("value,needle", [
    ("Velocity", "e.g. 'velocity'"), ("my_app", "e.g. 'my-app'"), ("-a", "DNS-1123 subdomain"),
    ("a-", "DNS-1123 subdomain"), ("a..b", "DNS-1123 subdomain"), (".a", "DNS-1123 subdomain"),
    ("a" * 254, "254 characters long"), ("", "is empty"), (7, "not a number"), (None, "not null"),
])
def test_invalid_object_names_name_the_field(value, needle):
    problem = k8s_names.name_problem(value, "metadata.name")
    assert problem.startswith("metadata.name") and needle in problem


@pytest.mark.parametrize("value", ["velocity.prod", "n" * 64, "Velocity", "a_b"])
def test_namespaces_are_labels(value):
    assert "DNS-1123 label" in k8s_names.name_problem(value, "namespace", label=True)
    assert k8s_names.name_problem("velocity-prod", "namespace", label=True) is None


def test_rbac_names_follow_the_path_segment_rule():
    assert k8s_names.object_name_problem("ClusterRole", "system:aggregate-to-view", "metadata.name") is None
    assert "'/'" in k8s_names.object_name_problem("Role", "a/b", "metadata.name")
    assert "DNS-1123 label" in k8s_names.object_name_problem("Namespace", "team.prod", "metadata.name")


def test_suggestions_are_valid():
    for value in ("My_App", "--x--", "a..b", "___", "Ünïcode Name", "x" * 300):
        for label in (False, True):
            assert k8s_names.name_problem(k8s_names.suggest(value, label), "f", label=label) is None


def test_inside_follows_symlinks(tmp_path):
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "Other").write_text("FROM scratch\n")
    (tmp_path / "ctx" / "link").symlink_to("../Other")
    assert paths.check_inside("dockerfile", "Dockerfile", str(tmp_path / "ctx"), "path") == str(tmp_path / "ctx" / "Dockerfile")
    for bad in ("../Other", "link", str(tmp_path / "Other")):
        with pytest.raises(paths.PathRefused, match=r"dockerfile .* outside path"):
            paths.check_inside("dockerfile", bad, str(tmp_path / "ctx"), "path")


@needs_git
def test_secret_file_in_a_tree_is_refused_unless_ignored(tree):
    with pytest.raises(paths.PathRefused, match=r"env_file .* is inside the Git working tree .*\.gitignore"):
        paths.check_secret_file("env_file", str(tree / "app.env"))
    with pytest.raises(paths.PathRefused, match="Git working tree"):
        paths.check_secret_file("env_file", str(tree / "deep" / "er" / "app.env"))
    paths.check_secret_file("env_file", str(tree / "ignored" / "app.env"))
    paths.check_secret_file("env_file", str(tree.parent / "outside.env"))
    assert not (tree / "deep").exists()


@needs_git
def test_an_inherited_git_dir_does_not_change_the_answer(tree, monkeypatch, tmp_path):
    other = tmp_path / "other"
    subprocess.run(["git", "init", "-q", str(other)], check=True)
    (other / ".gitignore").write_text("*\n")
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    with pytest.raises(paths.PathRefused, match="Git working tree"):
        paths.check_secret_file("env_file", str(tree / "app.env"))


@needs_git
def test_without_git_a_tree_is_refused(tree, monkeypatch):
    monkeypatch.setattr(paths.shutil, "which", lambda name: None)
    with pytest.raises(paths.PathRefused, match="git is not installed"):
        paths.check_secret_file("k8s_secret_file", str(tree / "ignored" / "s.json"))


def test_output_file_rules(tmp_path):
    paths.check_output_file("dest", str(tmp_path / "x.json"))
    with pytest.raises(paths.PathRefused, match=r"dest .* is a directory"):
        paths.check_output_file("dest", str(tmp_path))
    with pytest.raises(paths.PathRefused, match="does not exist; create it first"):
        paths.check_output_file("dest", str(tmp_path / "missing" / "x.json"))
    with pytest.raises(paths.PathRefused, match="dest is empty"):
        paths.check_output_file("dest", "")
    if os.geteuid() != 0:  # root writes anywhere
        (tmp_path / "ro").mkdir(mode=0o500)
        with pytest.raises(paths.PathRefused, match="not writable"):
            paths.check_output_file("dest", str(tmp_path / "ro" / "x.json"))
