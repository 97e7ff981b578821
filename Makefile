# The two commands a newcomer needs: `make run` and `make test`. Both set up .venv first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --quiet
# The pinned torch: from PyPI a CUDA build on Linux (or whatever build pip's own index configuration gives). For the
# smaller CPU-only build, as on a laptop: make setup TORCH_INDEX=https://download.pytorch.org/whl/cpu
TORCH ?= torch==2.13.0
TORCH_INDEX ?=
MODEL ?=
ARGS ?=

export GRADIO_ANALYTICS_ENABLED := False
export HF_HUB_DISABLE_TELEMETRY := 1

.PHONY: FORCE setup setup-dev run talk test lint bench room loadtest bundled-model word-lists screenshot clean

setup: $(VENV)/.package

setup-dev: $(VENV)/.dev

# The torch asked for, remembered: asking for another (TORCH_INDEX=... after a first setup) installs it in place.
$(VENV)/.torch-choice: FORCE
	@mkdir -p $(VENV)
	@echo '$(TORCH) $(TORCH_INDEX)' | cmp -s - $@ || echo '$(TORCH) $(TORCH_INDEX)' > $@

$(VENV)/.torch: $(VENV)/.torch-choice
	$(PYTHON) -m venv $(VENV)
	$(PIP) $(if $(wildcard $@),--force-reinstall --no-deps) $(TORCH) $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	touch $@

$(VENV)/.runtime: requirements.txt $(VENV)/.torch
	$(PIP) -r requirements.txt cython setuptools wheel
	@# fastBPE 0.1.0's shipped C++ does not compile on Python >= 3.11; built from its .pyx it does.
	$(PIP) --no-build-isolation fastBPE==0.1.0 \
	  || echo "fastBPE did not build: the tokenizer uses its pure-Python BPE (same output)."
	touch $@

# The package itself, editable: `xlm-demo` and `python -m xlm_demo` work from any folder and run this clone's code.
$(VENV)/.package: $(VENV)/.runtime pyproject.toml
	$(PIP) --no-build-isolation --no-deps --editable .
	touch $@

# Tests, lint and benchmarks, and the cluster extra (Ray Serve), so that its tests run too.
$(VENV)/.dev: $(VENV)/.package requirements-dev.txt pyproject.toml
	$(PIP) -r requirements-dev.txt
	$(PIP) --no-build-isolation --editable ".[cluster]"
	touch $@

run: setup
	$(PY) app.py $(if $(MODEL),--model $(MODEL)) $(ARGS)

# A talk from a laptop: the page on the network, its address and QR code in the terminal for the room's phones.
talk: setup
	$(PY) -m xlm_demo talk $(if $(MODEL),--model $(MODEL)) $(ARGS)

test: setup-dev
	HF_HUB_OFFLINE=1 $(PY) -m pytest $(ARGS)

lint: setup-dev
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

bench: setup-dev
	$(PY) -m benchmarks.run $(ARGS)

# A talk's audience typing on the page: 1-256 members through the page's own events (docs/benchmarks.md).
room: setup-dev
	$(PY) -m benchmarks.room $(ARGS)

# 50 simulated users for 60 s on the real server (real-size random weights); ARGS="--users 100 --model PATH".
loadtest: setup-dev
	$(PY) -m benchmarks.loadtest $(ARGS)

# The small bilingual model in assets/: Debian text, fastBPE codes, then training (29 minutes on 2 idle cores).
bundled-model: setup-dev
	HF_HUB_OFFLINE=1 $(PY) -m scripts.bundled_model.build $(ARGS)

word-lists: setup
	$(PY) -m scripts.word_lists

# docs/page.png, the README's picture, from the running page on the bundled model (Debian's chromium, Playwright).
screenshot: setup-dev
	$(PY) -m scripts.screenshot $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
