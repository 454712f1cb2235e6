"""Bad input to every module: a clear error naming the field, and nothing lost or left half-done.

Issue 7 of the tracker. Every case gives one module one piece of bad input (a wrong type or
value, an unknown option, an empty mapping or value, a path outside the allowed roots, a
malformed Vault reference ``path#key``, a name that is not DNS-1123, a bad image reference)
and asserts, each on its own test id:

- the task failed, and its message names the offending field or object (and, for our own
  messages, what to do);
- no Python traceback anywhere in the output;
- the failure came before any service was contacted: Vault, Docker and Kubernetes are
  pointed at a closed local port, so a case that reached the network would fail with a
  connection error, which the test refuses;
- nothing was written, created or removed: the case's workspace (an existing env file, an
  existing report, a Git working tree, the build context...) is byte-for-byte, mode for
  mode the same afterwards.

Most cases run the module file directly, as Ansible runs a new-style module
(``python -m ansible_collections.velocity.platform.plugins.modules.<name>`` with
``{"ANSIBLE_MODULE_ARGS": ...}`` on stdin), a few at a time in parallel since each
is a Python process that takes about half a second to start. vault_secrets, which runs in-process
through its action plugin for local connections, also gets a batch of cases through
ansible-playbook: ONE playbook with one task per case (ignore_errors, register) and one
dump, so the action-plugin path costs a single ansible-playbook start.

Counts (``python tests/reliability/test_bad_input.py`` prints them; test_the_counts_below_are_current
keeps this table honest):

    module                  wrong_type  unknown_option  empty  path_roots  vault_ref  dns1123  image_ref  total
    vault_secrets                   15               2      4           9         20       10          0     60
    vault_secrets (action)           5               1      1           2          3        2          0     14
    vault_db_credentials             8               1      4           4          0        0          0     17
    image_build                      6               1      3           6          0        0          4     20
    image_sbom                       3               1      2           3          0        0          3     12
    container_smoke_test             8               1      3           2          0        0          2     16
    manifest_apply                   8               1      5           3          0       14          0     31
    rollout_undo                     6               1      2           1          0        7          0     17
    dora_report                      1               1      1           6          0        0          0      9
    total                           60              10     25          36         23       33          9    196

Plus the controls (not counted): the same modules with valid input do reach the closed port
(so a bad-input pass really means "refused before the network"), and a secret file inside
a Git working tree that Git ignores is allowed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import stat
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COLLECTIONS = ROOT / "collections"
MODULES_PKG = "ansible_collections.velocity.platform.plugins.modules"
AREAS = ("wrong_type", "unknown_option", "empty", "path_roots", "vault_ref", "dns1123", "image_ref")
# What a failure looks like when the module did reach for a service.
NETWORK = re.compile(r"unreachable|cannot reach|Connection refused|Max retries|NewConnectionError|Failed to establish",
                     re.IGNORECASE)
DROP = object()  # an override that removes the option from the base arguments


@dataclass(frozen=True)
class Case:
    module: str
    area: str
    name: str
    args: dict
    expect: tuple  # substrings that must all be in msg ({ws} is the case's workspace)
    env: dict = field(default_factory=dict)  # extra environment ({ws} filled in); None values unset
    action: bool = False  # through ansible-playbook and the action plugin

    @property
    def id(self) -> str:
        return "%s%s-%s-%s" % (self.module, "[action]" if self.action else "", self.area, self.name)


# --- the cases ------------------------------------------------------------------------------

TOKEN = "bad-input-test-token-0123456789"
VAULT = {"url": "{vault_url}", "token": TOKEN, "retries": 0, "timeout": 2}
DB = {"role": "velocity-app", "url_template": "postgresql://{username}:{password}@127.0.0.1:1/velocity"}
CONFIGMAP = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bad-input", "namespace": "velocity"},
             "data": {"a": "b"}}
BASE = {
    "vault_secrets": dict(VAULT, secrets={"SECRET_KEY": "velocity/app#secret_key"}, env_file="{ws}/out/app.env"),
    "vault_db_credentials": dict(VAULT, role="velocity-app", lease_state_file="{ws}/out/lease.json"),
    "image_build": {"path": "{ws}/ctx", "name": "velocity/bad-input", "tag": "t1", "docker_host": "{docker_host}",
                    "api_timeout": 5},
    "image_sbom": {"image": "velocity/bad-input:t1", "dest": "{ws}/sbom.cdx.json", "docker_host": "{docker_host}",
                   "api_timeout": 5},
    "container_smoke_test": {"image": "velocity/bad-input:t1", "docker_host": "{docker_host}", "api_timeout": 5,
                             "env": {"SECRET_KEY": "bad-input-secret-key-0123456789",
                                     "DATABASE_URL": "postgresql://velocity:bad-input-db-password@127.0.0.1:1/velocity"}},
    "manifest_apply": {"definitions": [CONFIGMAP], "host": "{k8s_host}", "api_key": TOKEN},
    "rollout_undo": {"name": "velocity-app", "namespace": "velocity", "host": "{k8s_host}", "api_key": TOKEN},
    "dora_report": {"path": "{ws}/events.jsonl", "output_path": "{ws}/report.json"},
}
NO_GIT = {"PATH": "{ws}/no-git-bin"}  # a PATH with no git on it
UNSUPPORTED = "Unsupported parameters"
CASES: list[Case] = []


def case(module, area, case_name, expect, /, *, run_env=None, via_action=False, **overrides):
    """One case: ``overrides`` change the module's BASE arguments (DROP removes one); ``run_env`` its environment."""
    CASES.append(Case(module, area, case_name, overrides, tuple(expect), run_env or {}, via_action))


def cm(**meta):
    """The ConfigMap with its metadata changed (a key set to DROP is removed)."""
    obj = json.loads(json.dumps(CONFIGMAP))
    for key, value in meta.items():
        if value is DROP:
            obj["metadata"].pop(key, None)
        else:
            obj["metadata"][key] = value
    return obj


# vault_secrets ------------------------------------------------------------------------------
M = "vault_secrets"
case(M, "wrong_type", "secrets_is_a_list", ["secrets"], secrets=["SECRET_KEY=velocity/app#secret_key"])
case(M, "wrong_type", "max_workers_not_an_int", ["max_workers"], max_workers="many")
case(M, "wrong_type", "max_workers_zero", ["max_workers must be 1 or more"], max_workers=0)
case(M, "wrong_type", "kv_version_not_a_choice", ["kv_version"], kv_version=3)
case(M, "wrong_type", "database_is_a_string", ["database must be a mapping"], database="velocity-app")
case(M, "wrong_type", "database_is_a_list", ["database must be a mapping"], database=[DB])
case(M, "wrong_type", "token_is_a_list", ["token must be a string, not a list"], token=[TOKEN])
case(M, "wrong_type", "database_min_ttl_not_an_int", ["min_ttl"], database=dict(DB, min_ttl="soon"))
case(M, "wrong_type", "database_env_not_a_variable_name", ["database.env", "DATABASE URL"],
     database=dict(DB, env="DATABASE URL"))
case(M, "wrong_type", "url_template_without_placeholders", ["database.url_template", "{username}"],
     database=dict(DB, url_template="postgresql://app@db/velocity"))
case(M, "wrong_type", "k8s_labels_is_a_list", ["k8s_labels"], k8s_secret_name="app-env", k8s_labels=["tier=web"])
case(M, "wrong_type", "k8s_annotation_value_is_a_list", ["k8s_annotations.argocd.argoproj.io/sync-wave", "string"],
     k8s_secret_name="app-env", k8s_annotations={"argocd.argoproj.io/sync-wave": ["-1"]})
case(M, "wrong_type", "return_values_not_a_bool", ["return_values"], return_values="maybe")
case(M, "wrong_type", "k8s_secret_name_is_a_list", ["k8s_secret_name must be a string"], k8s_secret_name=["app-env"])
case(M, "unknown_option", "misspelt_secrets", [UNSUPPORTED, "sercets"],
     sercets={"SECRET_KEY": "velocity/app#secret_key"})
case(M, "unknown_option", "unknown_database_suboption", [UNSUPPORTED, "lease_file"],
     database=dict(DB, lease_file="{ws}/out/lease.json"))
case(M, "empty", "secrets_empty_mapping", ["secrets is empty", "database"], secrets={})
case(M, "empty", "database_empty_mapping", ["database", "role"], secrets={}, database={})
case(M, "empty", "database_role_empty", ["database.role is empty"], database=dict(DB, role=""))
case(M, "wrong_type", "database_role_with_a_slash", ["database.role", "velocity/app"], database=dict(DB, role="velocity/app"))
case(M, "empty", "k8s_secret_name_empty_with_a_secret_file", ["k8s_secret_name is empty", "k8s_secret_file"],
     k8s_secret_name="", k8s_secret_file="{ws}/out/secret.json")
GIT_TREE = ["is inside the Git working tree {ws}/repo", "write it outside the tree", ".gitignore"]
case(M, "path_roots", "env_file_in_a_git_tree", ["env_file {ws}/repo/app.env", *GIT_TREE], env_file="{ws}/repo/app.env")
case(M, "path_roots", "env_file_in_a_new_subdir_of_a_git_tree", ["env_file", *GIT_TREE],
     env_file="{ws}/repo/secrets/new/app.env")
case(M, "path_roots", "env_file_through_a_symlink_into_a_git_tree", ["env_file {ws}/repo-link/app.env", *GIT_TREE],
     env_file="{ws}/repo-link/app.env")
case(M, "path_roots", "env_file_overwriting_a_file_in_a_git_tree", ["env_file", *GIT_TREE],
     env_file="{ws}/repo/existing.json")
case(M, "path_roots", "k8s_secret_file_in_a_git_tree", ["k8s_secret_file {ws}/repo/app-secret.json", *GIT_TREE],
     k8s_secret_name="app-env", k8s_secret_file="{ws}/repo/app-secret.json")
case(M, "path_roots", "lease_state_file_in_a_git_tree", ["database.lease_state_file", *GIT_TREE],
     database=dict(DB, lease_state_file="{ws}/repo/db-lease.json"))
case(M, "path_roots", "git_tree_without_git_installed", ["env_file", "git is not installed", "write it outside"],
     run_env=NO_GIT, env_file="{ws}/repo/ignored/app.env")
case(M, "path_roots", "env_file_is_a_directory", ["env_file {ws}/adir is a directory"], env_file="{ws}/adir")
case(M, "path_roots", "token_file_missing", ["token_file", "{ws}/missing-token"], token=DROP,
     token_file="{ws}/missing-token")
for ref_name, ref, expect in [
    ("missing_hash", "velocity/app", "exactly one '#'"),
    ("two_hashes", "velocity/app#a#b", "exactly one '#'"),
    ("empty_key", "velocity/app#", "empty key"),
    ("empty_key_before_version", "velocity/app#@2", "empty key"),
    ("empty_path", "#secret_key", "empty path"),
    ("slash_only_path", "/#secret_key", "empty path"),
    ("empty_path_segment", "velocity//app#secret_key", "empty, '.' or '..' path segment"),
    ("dotdot_segment", "../other/app#secret_key", "'..' path segment"),
    ("whitespace_in_key", "velocity/app# secret_key", "whitespace"),
    ("whitespace_in_path", "velocity /app#secret_key", "whitespace"),
    ("only_whitespace", "   ", "is empty"),
    ("empty_string", "", "is empty"),
    ("version_not_a_number", "velocity/app#secret_key@latest", "version that is not a number"),
    ("version_empty", "velocity/app#secret_key@", "version that is not a number"),
    ("at_in_path", "velocity@2/app#secret_key", "'@' in the path"),
    ("int", 42, "it is a number"),
    ("list", ["velocity/app#secret_key"], "it is a list"),
    ("mapping", {"path": "velocity/app", "key": "secret_key"}, "it is a mapping"),
]:
    case(M, "vault_ref", ref_name, ["secrets.SECRET_KEY", "is not of the form 'path#key'", expect],
         env_file="{ws}/existing.env", secrets={"SECRET_KEY": ref})
case(M, "vault_ref", "env_name_leading_digit", ["secrets", "'1SECRET'", "not a valid environment variable name"],
     secrets={"1SECRET": "velocity/app#secret_key"})
case(M, "vault_ref", "env_name_with_a_dash", ["secrets", "'SECRET-KEY'", "not a valid environment variable name"],
     secrets={"SECRET-KEY": "velocity/app#secret_key"})
for dns_name, option, value, expect in [
    ("name_uppercase", "k8s_secret_name", "Velocity-App-Env", "e.g. 'velocity-app-env'"),
    ("name_underscore", "k8s_secret_name", "velocity_app_env", "e.g. 'velocity-app-env'"),
    ("name_leading_dash", "k8s_secret_name", "-velocity-app", "starting and ending with a letter or digit"),
    ("name_trailing_dot", "k8s_secret_name", "velocity-app.", "starting and ending with a letter or digit"),
    ("name_empty_dns_part", "k8s_secret_name", "velocity..app", "DNS-1123 subdomain"),
    ("name_too_long", "k8s_secret_name", "a" * 254, "254 characters long"),
    ("namespace_uppercase", "k8s_namespace", "Velocity", "e.g. 'velocity'"),
    ("namespace_with_a_dot", "k8s_namespace", "velocity.prod", "DNS-1123 label"),
    ("namespace_underscore", "k8s_namespace", "velocity_prod", "e.g. 'velocity-prod'"),
    ("namespace_too_long", "k8s_namespace", "n" * 64, "64 characters long"),
]:
    args = {"k8s_secret_name": "velocity-app-env", "k8s_secret_file": "{ws}/out/secret.json", option: value}
    case(M, "dns1123", dns_name, [option, "not a valid Kubernetes", expect], **args)

# vault_secrets through ansible-playbook and the action plugin (one batched playbook) --------
for area, name, expect, overrides in [
    ("wrong_type", "secrets_is_a_list", ["secrets"], {"secrets": ["SECRET_KEY=velocity/app#secret_key"]}),
    ("wrong_type", "max_workers_not_an_int", ["max_workers"], {"max_workers": "many"}),
    ("wrong_type", "database_is_a_string", ["database must be a mapping"], {"database": "velocity-app"}),
    ("wrong_type", "token_is_a_list", ["token must be a string, not a list"], {"token": [TOKEN]}),
    ("wrong_type", "k8s_annotation_value_is_a_mapping", ["k8s_annotations.sync"],
     {"k8s_secret_name": "app-env", "k8s_annotations": {"sync": {"wave": -1}}}),
    ("unknown_option", "misspelt_secrets", [UNSUPPORTED, "sercets"], {"sercets": {"A": "velocity/app#a"}}),
    ("empty", "secrets_empty_mapping", ["secrets is empty"], {"secrets": {}}),
    ("path_roots", "env_file_in_a_git_tree", ["env_file {ws}/repo/action.env", *GIT_TREE],
     {"env_file": "{ws}/repo/action.env"}),
    ("path_roots", "k8s_secret_file_in_a_git_tree", ["k8s_secret_file", *GIT_TREE],
     {"k8s_secret_name": "app-env", "k8s_secret_file": "{ws}/repo/action-secret.json"}),
    ("vault_ref", "missing_hash", ["secrets.SECRET_KEY", "exactly one '#'"], {"secrets": {"SECRET_KEY": "velocity/app"}}),
    ("vault_ref", "int", ["secrets.SECRET_KEY", "it is a number"], {"secrets": {"SECRET_KEY": 42}}),
    # YAML gives the action plugin a non-string key, which JSON (the module path) never can.
    ("vault_ref", "int_variable_name", ["secrets", "1", "not a valid environment variable name"],
     {"secrets": {1: "velocity/app#secret_key"}}),
    ("dns1123", "name_uppercase", ["k8s_secret_name", "Velocity"], {"k8s_secret_name": "Velocity"}),
    ("dns1123", "namespace_too_long", ["k8s_namespace", "64 characters long"],
     {"k8s_secret_name": "app-env", "k8s_namespace": "n" * 64}),
]:
    case(M, area, name, expect, via_action=True, **overrides)

# vault_db_credentials -----------------------------------------------------------------------
M = "vault_db_credentials"
case(M, "wrong_type", "min_ttl_not_an_int", ["min_ttl"], min_ttl="soon")
case(M, "wrong_type", "min_ttl_negative", ["min_ttl must be 0 or more"], min_ttl=-1)
case(M, "wrong_type", "state_not_a_choice", ["state"], state="gone")
case(M, "wrong_type", "reuse_not_a_bool", ["reuse"], reuse="maybe")
case(M, "wrong_type", "increment_not_an_int", ["increment"], state="renewed", increment="x")
case(M, "wrong_type", "role_is_a_list", ["role must be a string, not a list"], role=["velocity-app"])
case(M, "wrong_type", "secret_id_is_a_mapping", ["secret_id must be a string, not a mapping"], auth_method="approle",
     role_id="bad-input-role", secret_id={"value": TOKEN})
case(M, "wrong_type", "role_with_a_slash", ["role 'velocity/app' is not a role name"], role="velocity/app")
case(M, "unknown_option", "misspelt_lease_state_file", [UNSUPPORTED, "lease_file"], lease_file="{ws}/out/l.json")
case(M, "empty", "role_empty", ["role is empty"], role="")
case(M, "empty", "role_only_whitespace", ["role is empty"], role="  ")
case(M, "empty", "mount_empty", ["mount is empty"], mount="")
case(M, "empty", "renewed_without_a_lease", ["lease_id", "lease_state_file"], state="renewed",
     lease_state_file=DROP)
case(M, "path_roots", "lease_state_file_in_a_git_tree", ["lease_state_file {ws}/repo/lease.json", *GIT_TREE],
     lease_state_file="{ws}/repo/lease.json")
case(M, "path_roots", "renewed_lease_state_file_in_a_git_tree", ["lease_state_file", *GIT_TREE],
     state="renewed", lease_state_file="{ws}/repo/existing.json")
case(M, "path_roots", "git_tree_without_git_installed", ["lease_state_file", "git is not installed"], run_env=NO_GIT,
     lease_state_file="{ws}/repo/ignored/lease.json")
case(M, "path_roots", "lease_state_file_is_a_directory", ["lease_state_file {ws}/adir is a directory"],
     lease_state_file="{ws}/adir")

# image_build --------------------------------------------------------------------------------
M = "image_build"
case(M, "wrong_type", "build_args_is_a_list", ["build_args"], build_args=["VERSION=1"])
case(M, "wrong_type", "build_arg_value_is_a_mapping", ["build_args.VERSION must be a string"],
     build_args={"VERSION": {"major": 1}})
case(M, "wrong_type", "label_value_is_a_list", ["labels.team must be a string"], labels={"team": ["a", "b"]})
case(M, "wrong_type", "additional_tags_is_a_mapping", ["additional_tags"], additional_tags={"latest": True})
case(M, "wrong_type", "force_not_a_bool", ["force"], force="maybe")
case(M, "wrong_type", "api_timeout_not_an_int", ["api_timeout"], api_timeout="slow")
case(M, "unknown_option", "dockerfile_path", [UNSUPPORTED, "dockerfile_path"], dockerfile_path="Dockerfile")
case(M, "empty", "name_empty", ["name ''", "is empty"], name="")
case(M, "empty", "tag_empty", ["tag ''", "not a valid tag"], tag="")
case(M, "empty", "dockerfile_empty", ["dockerfile is empty"], dockerfile="")
case(M, "path_roots", "dockerfile_in_the_parent_directory", ["dockerfile '../outside/Dockerfile'", "outside the build context",
                                                             "Move the file into"], dockerfile="../outside/Dockerfile")
case(M, "path_roots", "dockerfile_absolute_outside", ["dockerfile", "outside the build context"],
     dockerfile="{ws}/outside/Dockerfile")
case(M, "path_roots", "dockerfile_symlink_out_of_the_context", ["dockerfile 'link-out'", "resolves to {ws}/outside/Dockerfile"],
     dockerfile="link-out")
case(M, "path_roots", "dockerfile_missing", ["dockerfile 'Containerfile' not found", "relative to the option path"],
     dockerfile="Containerfile")
case(M, "path_roots", "path_missing", ["path (the build context)", "does not exist", "existing directory"],
     path="{ws}/no-such-context")
case(M, "path_roots", "path_is_a_file", ["path (the build context)", "is not a directory"], path="{ws}/ctx/Dockerfile")
case(M, "image_ref", "name_uppercase", ["name 'Velocity/App'", "lowercase"], name="Velocity/App")
case(M, "image_ref", "name_with_a_tag", ["name 'velocity/app:1'", "tag option"], name="velocity/app:1")
case(M, "image_ref", "tag_with_a_space", ["tag 'v1 beta'", "not a valid tag"], tag="v1 beta")
case(M, "image_ref", "additional_tag_leading_dash", ["additional_tags '-latest'", "not a valid tag"],
     additional_tags=["-latest"])

# image_sbom ---------------------------------------------------------------------------------
M = "image_sbom"
case(M, "wrong_type", "timeout_not_an_int", ["timeout"], timeout="long")
case(M, "wrong_type", "timeout_zero", ["timeout must be a positive"], timeout=0)
case(M, "wrong_type", "force_not_a_bool", ["force"], force="maybe")
case(M, "unknown_option", "output", [UNSUPPORTED, "output"], output="{ws}/x.json")
case(M, "empty", "image_empty", ["image ''", "empty"], image="")
case(M, "empty", "dest_empty", ["dest is empty"], dest="")
case(M, "path_roots", "dest_directory_missing", ["dest {ws}/missing/sbom.json", "does not exist", "create it first"],
     dest="{ws}/missing/sbom.json")
case(M, "path_roots", "dest_is_a_directory", ["dest {ws}/adir is a directory"], dest="{ws}/adir")
case(M, "path_roots", "dest_parent_is_a_file", ["dest", "does not exist"], dest="{ws}/events.jsonl/sbom.json")
case(M, "image_ref", "uppercase", ["image 'Velocity/App:1'", "lowercase"], image="Velocity/App:1")
case(M, "image_ref", "tag_with_a_space", ["image 'velocity/app:bad tag'", "tag 'bad tag'"], image="velocity/app:bad tag")
case(M, "image_ref", "bad_digest", ["image", "digest 'sha256:xyz'"], image="velocity/app@sha256:xyz")

# container_smoke_test -----------------------------------------------------------------------
M = "container_smoke_test"
case(M, "wrong_type", "env_is_a_list", ["env"], env=["SECRET_KEY=x"])
case(M, "wrong_type", "env_value_is_a_mapping", ["env.SECRET_KEY must be a string"], env={"SECRET_KEY": {"a": 1}})
case(M, "wrong_type", "env_name_invalid", ["env:", "'1SECRET'", "not a valid environment variable name"],
     env={"1SECRET": "value"})
case(M, "wrong_type", "port_not_an_int", ["port"], port="http")
case(M, "wrong_type", "port_out_of_range", ["port must be between 0"], port=70000)
case(M, "wrong_type", "timeout_zero", ["timeout must be a positive"], timeout=0)
case(M, "wrong_type", "network_mode_not_a_choice", ["network_mode"], network_mode="overlay")
case(M, "wrong_type", "read_only_not_a_bool", ["read_only"], read_only="maybe")
case(M, "unknown_option", "envfile", [UNSUPPORTED, "envfile"], envfile="{ws}/existing.env")
case(M, "empty", "env_empty_mapping_and_no_env_file", ["no environment for the app", "env_file is not set",
                                                       "env is empty"], env={})
case(M, "empty", "env_file_without_variables", ["no environment for the app", "env_file is empty"], env={},
     env_file="{ws}/comments-only.env")
case(M, "empty", "image_empty", ["image ''", "empty"], image="")
case(M, "path_roots", "env_file_missing", ["env_file '{ws}/missing.env'"], env_file="{ws}/missing.env")
case(M, "path_roots", "env_file_is_a_directory", ["env_file '{ws}/adir'", "Is a directory"], env_file="{ws}/adir")
case(M, "image_ref", "uppercase", ["image 'Velocity/App'", "lowercase"], image="Velocity/App")
case(M, "image_ref", "spaces", ["image 'velocity app'"], image="velocity app")

# manifest_apply -----------------------------------------------------------------------------
M = "manifest_apply"
case(M, "wrong_type", "definitions_is_an_int", ["definitions must be a list of objects"], definitions=42)
case(M, "wrong_type", "definition_is_a_string_in_a_list", ["definitions document 1 is a str"],
     definitions=["kind: ConfigMap"])
case(M, "wrong_type", "metadata_is_a_string", ["definitions document 1 (ConfigMap)", "metadata that is a str"],
     definitions=[dict(CONFIGMAP, metadata="bad-input")])
case(M, "wrong_type", "kind_is_an_int", ["definitions document 1", "kind must be a string"],
     definitions=[dict(CONFIGMAP, kind=7)])
case(M, "wrong_type", "api_version_is_a_list", ["definitions document 1", "apiVersion must be a string"],
     definitions=[dict(CONFIGMAP, apiVersion=["v1"])])
case(M, "wrong_type", "annotations_is_a_list", ["annotations"], annotations=["a=b"])
case(M, "wrong_type", "wait_timeout_not_an_int", ["wait_timeout"], wait_timeout="soon")
case(M, "wrong_type", "run_hooks_not_a_choice", ["run_hooks"], run_hooks="sometimes")
case(M, "unknown_option", "definition", [UNSUPPORTED, "definition"], definition=[CONFIGMAP])
case(M, "empty", "definitions_empty_mapping", ["definitions document 1 has no apiVersion"], definitions={})
case(M, "empty", "definitions_empty_list", ["no object given"], definitions=[])
case(M, "empty", "definitions_empty_string", ["no object given"], definitions="")
case(M, "empty", "metadata_empty_mapping", ["definitions document 1 (ConfigMap) has no metadata.name"],
     definitions=[dict(CONFIGMAP, metadata={})])
case(M, "empty", "list_kind_without_items", ["no object given"], definitions=[{"apiVersion": "v1", "kind": "List",
                                                                             "items": []}])
case(M, "path_roots", "src_missing", ["src {ws}/missing.yaml does not exist"], definitions=DROP,
     src=["{ws}/missing.yaml"])
case(M, "path_roots", "kubeconfig_missing", ["cannot load kubeconfig {ws}/missing-kubeconfig"], host=DROP,
     kubeconfig="{ws}/missing-kubeconfig")
case(M, "path_roots", "src_is_a_directory", ["src {ws}/adir does not exist or is not a file"], definitions=DROP,
     src=["{ws}/adir"])
for dns_name, meta, expect in [
    ("name_uppercase", {"name": "Bad-Input"}, ["metadata.name 'Bad-Input'", "e.g. 'bad-input'"]),
    ("name_underscore", {"name": "bad_input"}, ["metadata.name 'bad_input'", "e.g. 'bad-input'"]),
    ("name_leading_dash", {"name": "-bad-input"}, ["metadata.name '-bad-input'", "DNS-1123 subdomain"]),
    ("name_too_long", {"name": "b" * 254}, ["metadata.name", "254 characters long"]),
    ("name_not_a_string", {"name": 123}, ["(ConfigMap 123)", "metadata.name must be a string", "not a number"]),
    ("namespace_uppercase", {"namespace": "Velocity"}, ["metadata.namespace 'Velocity'", "DNS-1123 label"]),
    ("namespace_with_a_dot", {"namespace": "velocity.prod"}, ["metadata.namespace 'velocity.prod'", "DNS-1123 label"]),
    ("namespace_too_long", {"namespace": "n" * 64}, ["metadata.namespace", "64 characters long"]),
]:
    case(M, "dns1123", dns_name, ["definitions document 1 (ConfigMap", *expect], definitions=[cm(**meta)])
case(M, "dns1123", "namespace_option_uppercase", ["namespace 'Velocity'", "DNS-1123 label", "e.g. 'velocity'"],
     namespace="Velocity")
case(M, "dns1123", "namespace_option_with_a_dot", ["namespace 'velocity.prod'", "DNS-1123 label"],
     namespace="velocity.prod")
case(M, "dns1123", "namespace_object_with_a_dot", ["(Namespace team.prod)", "DNS-1123 label"],
     definitions=[{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team.prod"}}])
case(M, "dns1123", "second_item_of_a_list_kind", ["definitions document 1 (List) document 2 (ConfigMap Bad)"],
     definitions=[{"apiVersion": "v1", "kind": "List", "items": [CONFIGMAP, cm(name="Bad")]}])
case(M, "dns1123", "in_a_yaml_string", ["definitions document 2 (ConfigMap bad_name)", "metadata.name"],
     definitions=yaml.safe_dump_all([CONFIGMAP, cm(name="bad_name")]))
case(M, "dns1123", "in_a_src_file", ["{ws}/manifests/bad-name.yaml document 1 (ConfigMap Bad_Name)"],
     definitions=DROP, src=["{ws}/manifests/cm.yaml", "{ws}/manifests/bad-name.yaml"])

# rollout_undo -------------------------------------------------------------------------------
M = "rollout_undo"
case(M, "wrong_type", "to_revision_not_an_int", ["to_revision"], to_revision="last")
case(M, "wrong_type", "to_revision_negative", ["to_revision must be 0"], to_revision=-1)
case(M, "wrong_type", "wait_not_a_bool", ["wait"], wait="maybe")
case(M, "wrong_type", "wait_timeout_zero", ["wait_timeout must be a positive"], wait_timeout=0)
case(M, "wrong_type", "poll_interval_not_a_float", ["poll_interval"], poll_interval="fast")
case(M, "wrong_type", "name_is_a_list", ["name", "not a valid Kubernetes object name"], name=["velocity-app"])
case(M, "unknown_option", "revision", [UNSUPPORTED, "revision"], revision=2)
case(M, "empty", "name_empty", ["name is empty"], name="")
case(M, "empty", "namespace_empty", ["namespace is empty"], namespace="")
case(M, "path_roots", "kubeconfig_missing", ["cannot load kubeconfig {ws}/missing-kubeconfig"], host=DROP,
     kubeconfig="{ws}/missing-kubeconfig")
for dns_name, option, value, expect in [
    ("name_uppercase", "name", "Velocity-App", "e.g. 'velocity-app'"),
    ("name_underscore", "name", "velocity_app", "e.g. 'velocity-app'"),
    ("name_leading_dash", "name", "-velocity-app", "starting and ending with a letter or digit"),
    ("name_too_long", "name", "d" * 254, "254 characters long"),
    ("namespace_uppercase", "namespace", "Velocity", "e.g. 'velocity'"),
    ("namespace_with_a_dot", "namespace", "velocity.prod", "DNS-1123 label"),
    ("namespace_too_long", "namespace", "n" * 64, "64 characters long"),
]:
    case(M, "dns1123", dns_name, [option + " ", "not a valid Kubernetes", expect], **{option: value})

# dora_report --------------------------------------------------------------------------------
M = "dora_report"
case(M, "wrong_type", "missing_ok_not_a_bool", ["missing_ok"], missing_ok="maybe")
case(M, "unknown_option", "output", [UNSUPPORTED, "output"], output="{ws}/x.json")
case(M, "empty", "path_empty", ["path is empty"], path="")
case(M, "path_roots", "output_directory_missing", ["output_path {ws}/missing/report.json", "does not exist",
                                                   "create it first"], output_path="{ws}/missing/report.json")
case(M, "path_roots", "output_is_a_directory", ["output_path {ws}/adir is a directory"], output_path="{ws}/adir")
case(M, "path_roots", "output_is_the_event_sink", ["output_path {ws}/events.jsonl is the event sink"],
     output_path="{ws}/events.jsonl")
case(M, "path_roots", "path_is_a_directory", ["path {ws}/adir is a directory"], path="{ws}/adir")
case(M, "path_roots", "path_not_utf8", ["path: cannot read the event sink {ws}/binary.jsonl as UTF-8"],
     path="{ws}/binary.jsonl")
case(M, "path_roots", "path_missing", ["path: the event sink {ws}/missing.jsonl does not exist", "missing_ok"],
     path="{ws}/missing.jsonl")

DIRECT_CASES = [c for c in CASES if not c.action]
ACTION_CASES = [c for c in CASES if c.action]


def counts() -> dict:
    """{module label: Counter(area)} for the table in the docstring."""
    table: dict = {}
    for c in CASES:
        table.setdefault(c.module + (" (action)" if c.action else ""), Counter())[c.area] += 1
    return table


def render_counts() -> str:
    rows = [["module", *AREAS, "total"]]
    total: Counter = Counter()
    for label, counter in counts().items():
        total.update(counter)
        rows.append([label, *(counter[a] for a in AREAS), sum(counter.values())])
    rows.append(["total", *(total[a] for a in AREAS), sum(total.values())])
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(str(cell).ljust(w) if i == 0 else str(cell).rjust(w)
                               for i, (cell, w) in enumerate(zip(row, widths, strict=True))) for row in rows)


# --- the harness ----------------------------------------------------------------------------

def fill(value, mapping):
    """Replace {ws}, {vault_url}... in every string of a nested value (other braces are left alone)."""
    if isinstance(value, str):
        for key, repl in mapping.items():
            value = value.replace("{%s}" % key, repl)
        return value
    if isinstance(value, dict):
        return {k: fill(v, mapping) for k, v in value.items() if v is not DROP}
    if isinstance(value, list):
        return [fill(v, mapping) for v in value]
    return value


def make_workspace(ws: Path) -> None:
    """What the cases point at: a build context, an existing env file and report, a Git working tree..."""
    (ws / "ctx").mkdir(parents=True)
    (ws / "ctx" / "Dockerfile").write_text("FROM scratch\nCOPY app.txt /\n")
    (ws / "ctx" / "app.txt").write_text("app\n")
    (ws / "outside").mkdir()
    (ws / "outside" / "Dockerfile").write_text("FROM scratch\n")
    (ws / "ctx" / "link-out").symlink_to("../outside/Dockerfile")
    event = {"type": "deploy", "result": "success", "started_at": "2026-01-01T00:00:00Z",
             "finished_at": "2026-01-01T00:01:00Z", "commit_time": "2025-12-31T23:00:00Z"}
    (ws / "events.jsonl").write_text(json.dumps(event) + "\n")
    (ws / "binary.jsonl").write_bytes(b"\xff\xfe\x00bad\n")
    (ws / "existing.env").write_text("OLD=1\n")
    (ws / "existing.env").chmod(0o600)
    (ws / "report.json").write_text('{"old": true}\n')
    (ws / "report.json").chmod(0o640)
    (ws / "comments-only.env").write_text("# nothing here\n\n")
    (ws / "adir").mkdir()
    (ws / "adir" / "keep.txt").write_text("keep\n")
    (ws / "no-git-bin").mkdir()
    (ws / "manifests").mkdir()
    (ws / "manifests" / "cm.yaml").write_text(yaml.safe_dump(CONFIGMAP))
    (ws / "manifests" / "bad-name.yaml").write_text(yaml.safe_dump(cm(name="Bad_Name")))
    repo = ws / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / ".gitignore").write_text("ignored/\n")
    (repo / "existing.json").write_text('{"tracked": true}\n')
    (repo / "existing.json").chmod(0o600)
    (ws / "repo-link").symlink_to("repo")


def snapshot(root: Path) -> dict:
    """Every path under root with its type, mode and content digest (symlinks not followed)."""
    state = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            info = path.lstat()
            rel = str(path.relative_to(root))
            if stat.S_ISLNK(info.st_mode):
                state[rel] = ("link", os.readlink(path))
            elif stat.S_ISDIR(info.st_mode):
                state[rel] = ("dir", oct(info.st_mode & 0o7777))
            else:
                state[rel] = ("file", oct(info.st_mode & 0o7777), hashlib.sha256(path.read_bytes()).hexdigest())
    return state


@dataclass
class Outcome:
    result: dict
    output: str  # everything the run printed
    changes: dict  # path -> (before, after) for every path that differs
    ws: Path


def diff_snapshots(before: dict, after: dict) -> dict:
    return {k: (before.get(k), after.get(k)) for k in sorted(set(before) | set(after)) if before.get(k) != after.get(k)}


def closed_port() -> socket.socket:
    """A socket bound to a local port and never listening: a connection to it is refused at once."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture(scope="module")
def endpoints():
    sock = closed_port()
    port = sock.getsockname()[1]
    yield {"vault_url": f"http://127.0.0.1:{port}", "docker_host": f"tcp://127.0.0.1:{port}",
           "k8s_host": f"https://127.0.0.1:{port}", "port": str(port)}
    sock.close()


def base_env(endpoints: dict) -> dict:
    """This environment without any service address or credential, pointing every service at the closed port."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("VAULT_", "BAO_", "DOCKER_", "KUBECONFIG", "K8S_AUTH_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(COLLECTIONS), os.environ.get("PYTHONPATH")]))
    env.update(VAULT_ADDR=endpoints["vault_url"], DOCKER_HOST=endpoints["docker_host"],
               KUBECONFIG=os.devnull, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))
    return env


def run_direct(module: str, args: dict, env: dict, cwd: Path) -> tuple[dict, str]:
    proc = subprocess.run([sys.executable, "-m", f"{MODULES_PKG}.{module}"],
                          input=json.dumps({"ANSIBLE_MODULE_ARGS": args}), capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=120)
    return module_result(proc.stdout, proc.returncode), proc.stdout + proc.stderr


def module_result(stdout: str, returncode: int) -> dict:
    try:
        return json.loads(stdout)
    except ValueError:
        return {"failed": True, "msg": "<the module printed no JSON result>", "rc": returncode}


class ForkServer:
    """tests/reliability/module_forkserver.py: the modules imported once, then one forked child per run that
    the module cannot tell from a ``python -m`` process of its own (environment, working directory, stdin,
    stdout, stderr, argv). The direct cases pay a fork instead of Python's start-up and the imports, about
    0.3 s of CPU each; the controls below still run ``python -m`` for real."""

    def __init__(self, modules: list[str], env: dict, scratch: Path) -> None:
        self.scratch = scratch
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("module_forkserver.py")),
                                      MODULES_PKG, *modules], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, env=env, cwd=scratch)
        ready = self.proc.stdout.readline()
        assert ready and json.loads(ready) == {"ready": True}, f"the fork server did not start ({ready!r})"
        self.runs = 0

    def run(self, module: str, args: dict, env: dict, cwd: Path, timeout: float = 120) -> tuple[dict, str]:
        self.runs += 1
        out, err = self.scratch / f"{self.runs}.out", self.scratch / f"{self.runs}.err"
        request = {"module": module, "args": args, "env": env, "cwd": str(cwd), "out": str(out), "err": str(err),
                   "timeout": timeout}
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        assert answer, "the fork server ended"
        returncode = json.loads(answer)["rc"]
        stdout, stderr = out.read_text(), err.read_text()
        return module_result(stdout, returncode), stdout + stderr

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def run_case(c: Case, base: Path, endpoints: dict, server: ForkServer) -> Outcome:
    ws = base / c.id.replace("[", "_").replace("]", "_")
    make_workspace(ws)
    mapping = dict(endpoints, ws=str(ws))
    args = fill(dict(BASE[c.module], **c.args), mapping)
    env = base_env(endpoints)
    env.update(fill(c.env, mapping))
    before = snapshot(ws)
    result, output = server.run(c.module, args, env, ws)
    return Outcome(result, output, diff_snapshots(before, snapshot(ws)), ws)


@pytest.fixture(scope="module")
def direct_outcomes(request, tmp_path_factory, endpoints):
    """Outcomes of the selected direct cases, one after the other through the fork server (each in its own
    workspace; the server's output files are kept outside the workspaces, which must not change)."""
    selected = {item.callspec.params["case"].id for item in request.session.items
                if hasattr(item, "callspec") and isinstance(item.callspec.params.get("case"), Case)}
    todo = [c for c in DIRECT_CASES if c.id in selected]
    base = tmp_path_factory.mktemp("bad-input")
    scratch = tmp_path_factory.mktemp("bad-input-output")
    server = ForkServer(sorted({c.module for c in todo}), base_env(endpoints), scratch)
    try:
        return {c.id: run_case(c, base, endpoints, server) for c in todo}
    finally:
        server.close()


@pytest.fixture(scope="module")
def action_outcomes(request, tmp_path_factory, endpoints):
    """Every action case through ONE ansible-playbook run: one task per case, then one dump of all results."""
    ws = tmp_path_factory.mktemp("bad-input-action")
    make_workspace(ws)
    mapping = dict(endpoints, ws=str(ws))
    tasks = []
    for index, c in enumerate(ACTION_CASES):
        tasks.append({"name": c.id, "velocity.platform.vault_secrets": fill(dict(BASE[c.module], **c.args), mapping),
                      "register": f"case_{index}", "ignore_errors": True})
    dump = ws.parent / (ws.name + "-results.json")
    everything = "{{ {%s} | to_json }}" % ", ".join(f"'{i}': case_{i}" for i in range(len(ACTION_CASES)))
    tasks.append({"name": "dump", "ansible.builtin.copy": {"content": everything, "dest": str(dump), "mode": "0600"}})
    book = ws.parent / (ws.name + "-play.yml")
    book.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}], sort_keys=False))
    before = snapshot(ws)
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), str(book)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600, env=base_env(endpoints))
    output = proc.stdout + proc.stderr
    assert dump.exists(), output[-4000:]
    results = json.loads(dump.read_text())
    changes = diff_snapshots(before, snapshot(ws))
    # Each case is judged on its own registered result; the playbook's output as a whole has its own test.
    return {c.id: Outcome(results[str(i)], "", changes, ws) for i, c in enumerate(ACTION_CASES)}, output


def check(c: Case, outcome: Outcome, endpoints: dict) -> None:
    result, msg = outcome.result, str(outcome.result.get("msg", ""))
    context = "\nresult: %s\noutput: %s" % (json.dumps(result, default=str)[:3000], outcome.output[-3000:])
    assert result.get("failed") is True, "bad input was accepted" + context
    assert result.get("changed") in (None, False), "a failed task reports a change" + context
    for needle in c.expect:
        needle = fill(needle, {"ws": str(outcome.ws)})
        assert needle in msg, "the message lacks %r%s" % (needle, context)
    assert "Traceback (most recent call last)" not in outcome.output + json.dumps(result, default=str), context
    assert not NETWORK.search(msg), "the module reached for a service before refusing its input" + context
    assert endpoints["port"] not in msg, "the message names the service address: it got that far" + context
    assert TOKEN not in outcome.output + json.dumps(result, default=str), "the token was echoed" + context
    assert not outcome.changes, "the workspace changed: %s%s" % (outcome.changes, context)


@pytest.mark.parametrize("case", DIRECT_CASES, ids=[c.id for c in DIRECT_CASES])
def test_bad_input_is_refused_before_any_service_and_changes_nothing(case, direct_outcomes, endpoints):
    check(case, direct_outcomes[case.id], endpoints)


@pytest.mark.slow
@pytest.mark.parametrize("case", ACTION_CASES, ids=[c.id for c in ACTION_CASES])
def test_bad_input_through_the_action_plugin(case, action_outcomes, endpoints):
    outcomes, dummy = action_outcomes
    check(case, outcomes[case.id], endpoints)


@pytest.mark.slow
def test_the_action_playbook_printed_no_traceback(action_outcomes):
    dummy, output = action_outcomes
    assert "Traceback (most recent call last)" not in output, output[-4000:]
    assert "exception occurred" not in output.lower(), output[-4000:]
    assert TOKEN not in output


# --- controls: without them a pass above could mean "the harness never reached anything" ----

CONTROLS = {
    "vault_secrets": "Vault at",
    "vault_db_credentials": "Vault at",
    "image_build": "cannot reach the Docker Engine",
    "image_sbom": "cannot reach the Docker Engine",
    "container_smoke_test": "cannot reach the Docker Engine",
    "manifest_apply": "cannot reach the Kubernetes API",
    "rollout_undo": "cannot reach the Kubernetes API",
}


@pytest.mark.parametrize("module", sorted(CONTROLS))
def test_valid_input_does_reach_the_closed_port(module, tmp_path, endpoints):
    make_workspace(tmp_path)
    mapping = dict(endpoints, ws=str(tmp_path))
    before = snapshot(tmp_path)
    result, output = run_direct(module, fill(BASE[module], mapping), base_env(endpoints), tmp_path)
    assert result.get("failed") is True, output
    assert CONTROLS[module] in result["msg"] and endpoints["port"] in result["msg"], output
    assert "Traceback (most recent call last)" not in output
    assert not diff_snapshots(before, snapshot(tmp_path))


def test_dora_report_with_valid_input_writes_the_report(tmp_path, endpoints):
    make_workspace(tmp_path)
    result, output = run_direct("dora_report", fill(BASE["dora_report"], {"ws": str(tmp_path)}),
                                base_env(endpoints), tmp_path)
    assert result.get("changed") is True and not result.get("failed"), output
    assert json.loads((tmp_path / "report.json").read_text()) == result["report"]


@pytest.mark.parametrize("module,args", [
    ("vault_secrets", {"env_file": "{ws}/repo/ignored/app.env"}),
    ("vault_db_credentials", {"lease_state_file": "{ws}/repo/ignored/lease.json"}),
])
def test_a_secret_file_that_git_ignores_may_live_in_the_tree(module, args, tmp_path, endpoints):
    make_workspace(tmp_path)
    mapping = dict(endpoints, ws=str(tmp_path))
    before = snapshot(tmp_path)
    result, output = run_direct(module, fill(dict(BASE[module], **args), mapping), base_env(endpoints), tmp_path)
    # The path check passed: the module went on to Vault, which is not there.
    assert result.get("failed") is True and "Vault at" in result["msg"], output
    assert not diff_snapshots(before, snapshot(tmp_path))


def test_the_counts_below_are_current():
    """The table in the module docstring is what CASES holds."""
    documented = re.search(r"^ +module .*?^ +total[^\n]*", __doc__, re.M | re.S).group(0)
    assert [line.split() for line in documented.splitlines()] == \
        [line.split() for line in render_counts().splitlines()], "\n" + render_counts()
    assert {c.area for c in CASES} <= set(AREAS)
    assert len({c.id for c in CASES}) == len(CASES), "two cases share an id"


if __name__ == "__main__":
    print(render_counts())
