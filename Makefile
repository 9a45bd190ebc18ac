# The two set-up commands of the README: `make run` and `make test`.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
LISTEN ?= 127.0.0.1:9837
# Debian packages the tests start for real: a 3-node ZooKeeper ensemble, Prometheus (+ promtool),
# Alertmanager (+ amtool), node_exporter for the scrape benchmark, systemd-analyze for the unit files;
# and the Debian tools that build the .deb (`make dist`).
DEBIAN_PACKAGES := zookeeper prometheus prometheus-alertmanager prometheus-node-exporter systemd curl ca-certificates openssl \
	build-essential debhelper dh-virtualenv python3-venv python3-dev

.PHONY: run demo test lint typecheck bench bench-gpu generate deps-debian venv clean dist

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,worker,demo]'
	touch $@

venv: $(VENV)/.installed

# The torch backend's tests run on PyTorch's CPU-only build (`device: cpu`; production needs CUDA). The
# local version label pins that build, so pip fails loudly rather than pull the multi-gigabyte CUDA build;
# where no CPU wheel is on pip's path, set TORCH_CPU_INDEX to PyTorch's CPU wheel index.
TORCH_CPU ?= torch==2.13.0+cpu
TORCH_CPU_INDEX ?=
$(VENV)/.torch-cpu: $(VENV)/.installed
	$(PY) -m pip install -q $(if $(TORCH_CPU_INDEX),--extra-index-url $(TORCH_CPU_INDEX)) '$(TORCH_CPU)' 'safetensors>=0.4,<1'
	touch $@

deps-debian:
	$(SUDO) apt-get update -q
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $(DEBIAN_PACKAGES)

run: venv
	@echo "gpuwarden: scrape http://$(LISTEN)/metrics   health: http://$(LISTEN)/health"
	$(VENV)/bin/gpuwarden agent --listen $(LISTEN)

# The incident drill on one machine (no GPU needed; the GPU is an NVML replay): ZooKeeper x3, Prometheus and
# Alertmanager from Debian's packages, the agent supervising the reference worker; OOM, hang, latency spike
# and quorum loss, with the timeline printed live and written to .demo/timeline.{json,png}. Ctrl-C stops all.
demo: deps-debian venv
	$(PY) -m gpuwarden.demo --out .demo

lint: venv
	$(VENV)/bin/ruff check gpuwarden tests bench
	$(VENV)/bin/ruff format --check gpuwarden tests bench

typecheck: venv
	$(VENV)/bin/mypy

test: deps-debian venv $(VENV)/.torch-cpu lint typecheck
	$(VENV)/bin/pytest -q -ra

bench: deps-debian venv
	$(PY) bench/scrape.py
	$(PY) bench/probe.py
	$(PY) bench/fleet.py
	$(PY) bench/network.py
	$(PY) bench/inference.py

# On a GPU node: NVML cycle against nvidia-smi, and the whole agent on the real driver.
bench-gpu: venv
	$(PY) bench/gpu.py
	$(PY) bench/gpu_agent_smoke.py .

# Re-render the generated, committed files (review their diff like code).
generate: venv
	$(VENV)/bin/gpuwarden config-docs > docs/configuration.md
	$(VENV)/bin/gpuwarden dashboards build --out deploy
	$(VENV)/bin/gpuwarden rules build --out deploy

# The wheel and sdist, and the Debian package (a virtualenv under /opt/gpuwarden, built by dh-virtualenv
# from a copy of the working tree so that dpkg-buildpackage's outputs stay inside build/).
dist: venv
	rm -rf dist build/deb && mkdir -p dist build/deb/gpuwarden
	$(PY) -m pip install -q build
	$(PY) -m build --outdir dist . >/dev/null
	git ls-files -z --cached --others --exclude-standard | \
		tar --null --ignore-failed-read -T - -cf - | tar -x -C build/deb/gpuwarden
	cd build/deb/gpuwarden && dpkg-buildpackage -us -uc -b >../build.log 2>&1 || { tail -40 ../build.log; exit 1; }
	cp build/deb/*.deb dist/
	@ls -1 dist

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist
