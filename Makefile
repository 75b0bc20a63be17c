# Two entry points (see README): `make demo` runs the main job, `make test` runs the suite.
# Each creates or refreshes its own virtual environment in .venv and installs the
# CPU build of torch 2.13.0 explicitly before the package itself.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_PIN ?= torch==2.13.0
# Where the CPU build of torch comes from (an extra index, so PyPI still serves the rest);
# `make test TORCH_INDEX=` uses PyPI alone, which on most machines means the CUDA build.
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
TORCH_FROM := $(if $(TORCH_INDEX),--retries 1 --extra-index-url $(TORCH_INDEX))

.PHONY: venv test lint typecheck package-check docs demo bench bench-setup report mutants clean

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH_FROM) "$(TORCH_PIN)"
	$(PY) -m pip install --quiet -e ".[dev,docs,examples]"
	touch $@

venv: $(VENV)/.installed

lint: venv
	$(PY) -m ruff check src tests benchmarks examples

typecheck: venv
	$(PY) -m mypy --strict src

# build wheel + sdist, twine check, contents, install into a fresh venv outside the repository,
# run the README snippet and the gradient checks there (.ci/package_check.py)
# mutation testing of src/rvq_blocks (.ci/mutants.py; about an hour on 2 cores)
mutants: venv
	$(PY) .ci/mutants.py --out benchmarks/results/mutants.json

package-check: venv
	$(PY) .ci/package_check.py --python $(PYTHON) --torch "$(TORCH_PIN)" --torch-index "$(TORCH_INDEX)"

test: venv lint typecheck package-check
	$(PY) -m pytest -q
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --quiet --site-dir site

docs: venv
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --site-dir site

# The main job: synthesise the Telugu corpus (installing festival, its Telugu voice and
# espeak-ng from Debian if missing; needs root) and run a short training of the example codec.
SYNTHS := festival festvox-te-nsk espeak-ng
# 8 minutes of training (warm-up and cosine decay over that time budget), evaluated every 60 steps,
# on the built-in Telugu corpus alone (at this budget the recorded voices cost held-out quality)
DEMO_FLAGS := --max_minutes 8 --num_epochs 1000 --steps_per_epoch 60 --no-real_speech
demo: venv
	@dpkg-query -W -f='$${Status}\n' $(SYNTHS) 2>/dev/null | grep -c "ok installed" | grep -qx 3 \
	  || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYNTHS); }
	$(PY) -m examples.telugu_codec.train --overwrite $(DEMO_FLAGS) $(DEMO_ARGS)

bench-setup: venv
	$(PY) -m pip install --quiet -e ".[bench]"
	$(PY) -m pip install --quiet --no-deps encodec==0.1.1 descript-audio-codec==1.0.0

bench: bench-setup
	$(PY) -m benchmarks.bench_rate_distortion --out benchmarks/results/rate_distortion.json
	$(PY) -m benchmarks.bench_speed --out benchmarks/results/speed.json
	$(PY) -m benchmarks.bench_memory --out benchmarks/results/memory.json
	$(PY) -m benchmarks.bench_failure_modes --out benchmarks/results/failure_modes.json
	$(PY) -m benchmarks.bench_codebook_usage --out benchmarks/results/codebook_usage.json
	$(PY) -m benchmarks.report

# re-render the generated blocks of the docs pages and README, and the plots, from benchmarks/results/*.json
report: venv
	$(PY) -m benchmarks.report

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache site
