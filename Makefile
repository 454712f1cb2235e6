# Velocity: one definition of every check, used by README, .ci/run and the hosted CI.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
IN_VENV := scripts/in-venv
COLLECTION := collections/ansible_collections/velocity/platform
SCENARIOS ?= $(sort $(notdir $(patsubst %/,%,$(dir $(wildcard molecule/*/molecule.yml)))))
PYTEST_ARGS ?=
# Workers of the parallel pass (0: one process); PYTEST_JUNIT=out/junit writes out/junit-{parallel,beside,serial}.xml.
PYTEST_WORKERS ?= 2
# The lane of tests that mostly wait (tests/parallel.py BESIDE), beside the parallel pass: its own workers.
LANE_WORKERS ?= $(if $(filter 0,$(PYTEST_WORKERS)),0,2)
# Molecule scenarios run side by side, this many at a time (scripts/run-molecule).
MOLECULE_JOBS ?= 2
PYTEST_JUNIT ?=

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

.PHONY: setup
setup: ## install packages and the venv, start the local services (idempotent)
	scripts/setup

.PHONY: venv
venv: ## create the Python environment (outside the repo, cached)
	@bash scripts/venv.sh

.PHONY: run
run: setup ## the main job: the whole pipeline on the embedded local default
	$(IN_VENV) scripts/run-pipeline

.PHONY: test
test: setup ## every check: lint, sanity, ansible-test units, unit + integration tests, Molecule, load; last, make stop is checked (it stops the services)
	@# make checks runs beside the tests at a lower priority (CHECKS_BESIDE): it takes the CPU the tests leave idle
	@# while they wait for pods and rollouts, instead of a minute of its own before them.
	$(MAKE) --no-print-directory pytest-molecule CHECKS_BESIDE=1
	$(MAKE) --no-print-directory load-if-budget
	$(MAKE) --no-print-directory stop-check
	@echo "make test: all checks passed"

.PHONY: checks
checks: ## lint, sanity and units side by side (each one's output printed whole when it ends)
	$(MAKE) --no-print-directory -j3 --output-sync=target lint sanity units

.PHONY: lint
lint: ## ruff, yamllint, ansible-lint (production profile), bandit, actionlint
	$(IN_VENV) ruff check .
	$(IN_VENV) yamllint -s .
	$(IN_VENV) ansible-lint --profile production
	$(IN_VENV) bandit -q -r app/src $(COLLECTION)/plugins -ll
	scripts/actionlint

.PHONY: bandit-sarif
bandit-sarif: ## Bandit as SARIF 2.1.0 in out/bandit.sarif; fails on medium or high findings
	mkdir -p out
	$(IN_VENV) bandit -q -r app/src $(COLLECTION)/plugins -ll -f sarif -o out/bandit.sarif

.PHONY: image
image: ## the image stage (after the secrets its smoke test needs): build, SBOM, smoke test; artifacts in out/artifacts
	$(IN_VENV) ansible-playbook playbooks/secrets.yml playbooks/build.yml -e velocity_artifacts_dir=$(CURDIR)/out/artifacts

.PHONY: codeql-gate-check
codeql-gate-check: ## scripts/codeql-gate against a stub CodeQL CLI exiting with each documented code
	$(IN_VENV) pytest -q tests/integration/test_ci_workflow.py -k codeql_gate

.PHONY: workflow
workflow: ## run every job of .github/workflows/ci.yml here with act (pull_request, then push); evidence in docs/ci/
	mkdir -p out/act docs/ci
	rc=0; for event in pull_request push; do \
	  scripts/act "$$event" --concurrent-jobs 1 2>&1 | tee "out/act/$$event.log" || rc=1; \
	  gzip -9c "out/act/$$event.log" > "docs/ci/act-$$event.log.gz"; \
	done; \
	$(IN_VENV) python scripts/workflow-evidence --out docs/ci/workflow-run.md \
	  pull_request=out/act/pull_request.log push=out/act/push.log || rc=1; \
	exit $$rc

.PHONY: sanity
sanity: ## ansible-test sanity on the collection (offline)
	scripts/ansible-test/run sanity

.PHONY: units
units: ## ansible-test units on the collection
	scripts/ansible-test/run units

.PHONY: pytest
pytest: ## unit and integration tests against the real local services (all but the load suite): on $(PYTEST_WORKERS) workers side by side with the few that mostly wait in a lane beside them, then the few that must run alone (tests/parallel.py)
	@# Exit 5 is "no test selected" (PYTEST_ARGS may select tests of one pass only); both passes empty is an error.
	@# MOLECULE_BESIDE: scenarios run (one at a time) beside the parallel pass; MOLECULE_BETWEEN: after it, before the
	@# serial pass. Neither is set by default; make pytest-molecule (so make test) sets both.
	@# CHECKS_BESIDE: make checks (lint, sanity, units) at nice 10 from the start until the parallel pass ends.
	mkdir -p out/molecule; checks=0; $(if $(CHECKS_BESIDE),echo "make checks beside the tests at nice 10 (output printed when the parallel pass ends)"; \
	  nice -n 10 $(MAKE) --no-print-directory checks > out/checks.out 2>&1 & checks_pid=$$!;) \
	release=0; $(IN_VENV) python -m tests.release || release=$$?; \
	$(if $(CHECKS_BESIDE),[ "$$release" = 0 ] || { wait "$$checks_pid" || checks=$$?; cat out/checks.out; exit "$$release"; };) \
	[ "$$release" = 0 ] || exit "$$release"; \
	beside=0; $(if $(MOLECULE_BESIDE),echo "Molecule $(MOLECULE_BESIDE) beside the parallel pass (one at a time; logs in out/molecule/)"; \
	  MOLECULE_JOBS=1 scripts/run-molecule $(MOLECULE_BESIDE) > out/molecule/beside.out 2>&1 & molecule_pid=$$!;) \
	echo "the tests that mostly wait (tests/parallel.py BESIDE) run beside the parallel pass (output printed when it ends)"; \
	lane=0; VELOCITY_K8S_KEEP=1 $(IN_VENV) pytest -m "beside and not load and not teardown and not serial" \
	  -n $(LANE_WORKERS) --dist loadscope $(if $(PYTEST_JUNIT),--junitxml=$(PYTEST_JUNIT)-beside.xml) $(PYTEST_ARGS) > out/pytest-beside.out 2>&1 & lane_pid=$$!; \
	parallel=0; VELOCITY_K8S_KEEP=1 $(IN_VENV) pytest -m "not load and not teardown and not serial and not beside" \
	  -n $(PYTEST_WORKERS) --dist loadscope $(if $(PYTEST_JUNIT),--junitxml=$(PYTEST_JUNIT)-parallel.xml) \
	  $(PYTEST_ARGS) || parallel=$$?; \
	wait "$$lane_pid" || lane=$$?; echo "== the tests beside the parallel pass: exit $$lane"; cat out/pytest-beside.out; \
	$(if $(MOLECULE_BESIDE),wait "$$molecule_pid" || beside=$$?; cat out/molecule/beside.out;) \
	$(if $(CHECKS_BESIDE),wait "$$checks_pid" || checks=$$?; echo "== make checks (beside the tests): exit $$checks"; cat out/checks.out;) \
	[ "$$parallel" = 0 ] || [ "$$parallel" = 5 ] || exit "$$parallel"; \
	[ "$$lane" = 0 ] || [ "$$lane" = 5 ] || exit "$$lane"; \
	[ "$$beside" = 0 ] || exit "$$beside"; \
	[ "$$checks" = 0 ] || exit "$$checks"; \
	$(if $(MOLECULE_BETWEEN),MOLECULE_JOBS=$(MOLECULE_JOBS) scripts/run-molecule $(MOLECULE_BETWEEN);) \
	serial=0; $(IN_VENV) pytest -m "serial and not load and not teardown" \
	  $(if $(PYTEST_JUNIT),--junitxml=$(PYTEST_JUNIT)-serial.xml) $(PYTEST_ARGS) || serial=$$?; \
	[ "$$serial" = 0 ] || [ "$$serial" = 5 ] || exit "$$serial"; \
	[ "$$parallel$$lane$$serial" != 555 ] || { echo "make pytest: no test selected"; exit 5; }

# The Molecule scenarios that share nothing with the parallel pass of make pytest: each deploys into a namespace
# of its own, with secrets in a directory of its own and no lease record, so they can run beside it. The others
# cannot: image smoke-tests the shared app image tag while tests count the engine's smoke-test containers,
# base_image rebuilds the base image the image tests build on, vault_secrets re-runs vault-bootstrap and rewrites
# the shared lease record (tests/parallel.py, group "pipeline"); they run between the two passes.
MOLECULE_INDEPENDENT ?= deploy rollback

.PHONY: pytest-molecule
pytest-molecule: ## make pytest and make molecule in one: MOLECULE_INDEPENDENT's scenarios run beside the parallel pass, the others before the serial pass
	$(MAKE) --no-print-directory pytest MOLECULE_BESIDE="$(filter $(MOLECULE_INDEPENDENT),$(SCENARIOS))" \
	  MOLECULE_BETWEEN="$(filter-out $(MOLECULE_INDEPENDENT),$(SCENARIOS))"

.PHONY: load
load: ## the 60 s load test with dynamic DB lease renewal (tests/reliability/test_load.py)
	VELOCITY_CI_STARTED= scripts/run-load-tests

.PHONY: load-if-budget
load-if-budget: ## the load suite, when .ci/run's time budget allows (else reported as NOT RUN)
	scripts/run-load-tests

.PHONY: molecule
molecule: ## every Molecule scenario under molecule/ (SCENARIOS="a b" to choose), MOLECULE_JOBS (2) at a time, logs in out/molecule/
	MOLECULE_JOBS=$(MOLECULE_JOBS) scripts/run-molecule $(SCENARIOS)

.PHONY: bench
bench: setup ## benchmarks side by side with the anchors; RESULTS.md rewritten whole (BENCH_BASELINE=<rev>: before rows too)
	$(IN_VENV) python benchmarks/run_all.py $(if $(BENCH_BASELINE),--baseline $(BENCH_BASELINE))

.PHONY: collection
collection: ## build the collection tarball into dist/ and install it offline
	mkdir -p dist
	$(IN_VENV) ansible-galaxy collection build $(COLLECTION) --output-path dist --force
	$(IN_VENV) ansible-galaxy collection install --no-deps --force -p dist/collections dist/velocity-platform-*.tar.gz

.PHONY: stop
stop: ## stop every local service this project or its tests started (scripts/stop)
	scripts/stop

.PHONY: stop-check
stop-check: ## run make stop and check that no project process or port is left (stops the services)
	$(IN_VENV) pytest -m teardown tests/integration/test_stop.py
