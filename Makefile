# One virtual environment for everything: `make demo`, `make test`, `make check`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# A second venv for the Spark tests: pyspark 4.x pandas UDFs need pandas<3, while .venv
# runs pandas 3. It also gives the batch code a run against pandas 2.
SPARK_PYTHON ?= python3.11
SPARK_VENV ?= .venv-spark
SPARK_PY := $(SPARK_VENV)/bin/python
SPARK_STAMP := $(SPARK_VENV)/.installed

# The test S3 server (scripts/s3-server.sh) is Ceph RGW from Debian; installed once.
CEPH_PACKAGES := radosgw ceph-mon ceph-osd ceph-common

.PHONY: demo demo-server test check bench clean s3-server-packages

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch==2.13.0 is the CPU build on this machine kind; any other spec pulls CUDA (GBs).
	$(PY) -m pip install -q torch==2.13.0
	# xgboost and lightgbm are their CPU builds (xgboost-cpu, lightgbm): ~2 s, +30 MB.
	$(PY) -m pip install -q -e '.[dev,sklearn,torch,xgboost,lightgbm,uv,serve,s3]'
	touch $(STAMP)

$(SPARK_STAMP): pyproject.toml
	$(SPARK_PYTHON) -m venv $(SPARK_VENV)
	echo '*' > $(SPARK_VENV)/.gitignore
	$(SPARK_PY) -m pip install -q --upgrade pip
	# the first build compiles pyspark's 456 MB sdist into a wheel (~1 min), cached by pip after
	$(SPARK_PY) -m pip install -q -e '.[sklearn,spark,uv]' pytest pytest-timeout httpx
	touch $(SPARK_STAMP)

s3-server-packages:  ## the Debian packages of the test S3 server, unless they are there
	@command -v radosgw >/dev/null && command -v ceph-mon >/dev/null && command -v ceph-osd >/dev/null \
		&& command -v ceph >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -q --no-install-recommends $(CEPH_PACKAGES); }

demo: $(STAMP)  ## train, save, load, predict on the embedded default
	$(PY) examples/demo.py

demo-server: $(STAMP)  ## the same job through a real `modelyard server`, with tokens
	$(PY) examples/demo_server.py

test: $(STAMP) $(SPARK_STAMP) s3-server-packages  ## the whole test suite (builds the cached MLflow env for interop tests once)
	$(PY) -m pytest -q
	# Spark in local mode, serially (workers must run the Spark venv's interpreter), and
	# the rest of batch scoring and the model-process wire format again, against pandas 2
	PYSPARK_PYTHON=$(abspath $(SPARK_PY)) $(SPARK_PY) -m pytest -q tests/batch tests/isolation/test_wire.py tests/cli/test_predict.py

check: $(STAMP)  ## lint, format and type checks
	$(VENV)/bin/ruff check src tests bench examples
	$(VENV)/bin/ruff format --check src tests bench examples
	$(VENV)/bin/mypy

bench: $(STAMP)  ## side-by-side benchmarks against MLflow
	$(PY) -m bench

clean:
	rm -rf $(VENV) $(SPARK_VENV) .pytest_cache .mypy_cache .ruff_cache demo-yard demo-server-yard
