# A thin front over the `fp4stack` tool: every target is one `fp4stack <verb>`.
# The first target that needs it creates build/venv/tool/ (fp4stack itself, ruff, mypy, and
# pytest for mypy to read the seeding plugin's types).
# Limit a target to some lines with UPSTREAM="vllm@0.28.0 modelopt" (a bare upstream name
# means all of its lines).

PYTHON ?= python3
TOOL_VENV := build/venv/tool
FP4STACK := $(TOOL_VENV)/bin/fp4stack
UPSTREAM ?=
# `make test JOBS=1` runs the lines one after another with their output live.
JOBS ?=

.DEFAULT_GOAL := help
.PHONY: help wheel test apply prove refresh lint pr clean distclean

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 12

wheel: $(FP4STACK) ## build the patched wheels into dist/ (the main job)
	$(FP4STACK) wheel $(UPSTREAM)

test: $(FP4STACK) ## run upstream suites, our tests and the proofs against the patched builds
	$(FP4STACK) test $(if $(JOBS),--jobs $(JOBS)) $(UPSTREAM)

apply: $(FP4STACK) ## fetch + verify pristine sources, apply every series into build/src/
	$(FP4STACK) apply $(UPSTREAM)

prove: $(FP4STACK) ## each patch's regression test: red on pristine, green on patched
	$(FP4STACK) prove $(UPSTREAM)

refresh: $(FP4STACK) ## export commits in build/src/<upstream>/ back to patches/
	$(FP4STACK) refresh $(UPSTREAM)

pr: $(FP4STACK) ## cut upstream PRs (fix + ported test, PR.md, SEND.md in build/pr/) from Pending/Submitted patches
	$(FP4STACK) pr $(UPSTREAM)

lint: $(FP4STACK) ## ruff, mypy, patch headers, and a re-export dry run
	$(TOOL_VENV)/bin/ruff check .
	$(TOOL_VENV)/bin/ruff format --check .
	$(TOOL_VENV)/bin/mypy
	$(FP4STACK) lint $(UPSTREAM)

clean: $(FP4STACK) ## remove dist/ and generated trees (keeps downloads and venvs)
	$(FP4STACK) clean

distclean: ## remove build/ and dist/ entirely
	rm -rf build dist

$(FP4STACK): pyproject.toml
	$(PYTHON) -m venv $(TOOL_VENV)
	$(TOOL_VENV)/bin/pip install -q --disable-pip-version-check -e . ruff==0.14.6 mypy==2.4.1 pytest==9.2.0
	@touch $@
