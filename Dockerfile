# syntax=docker/dockerfile:1
# The Payletter gateway: a small image that runs as a non-root user.
#   docker build -t payletter-gateway .                       (the service)
#   docker build --target simulator -t payletter-simulator .  (the local Payletter, for demos)

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- build: install the locked dependencies and the app into a virtualenv ---------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /build
COPY requirements.lock ./
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --require-hashes --no-deps -r requirements.lock
COPY pyproject.toml README.md LICENSE ./
COPY app ./app
RUN /opt/venv/bin/pip install --no-deps .

# ---- runtime: the venv, the migrations, nothing else ------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 gateway \
 && useradd --system --uid 10001 --gid gateway --home-dir /srv --shell /usr/sbin/nologin gateway
COPY --from=build /opt/venv /opt/venv
WORKDIR /srv
COPY alembic.ini ./
COPY migrations ./migrations
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PORT=8000 \
    WEB_CONCURRENCY=2 \
    GRACEFUL_SHUTDOWN_SECONDS=25 \
    LOG_FORMAT=json
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD ["python", "-c", "import os,urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=2)"]
# `serve` runs uvicorn with --no-proxy-headers (the app decides who calls, from
# TRUSTED_PROXIES), WEB_CONCURRENCY workers, and a graceful shutdown: on SIGTERM, in-flight
# callbacks finish and the webhook dispatcher completes its batch.
CMD ["payletter-gateway", "serve", "--host", "0.0.0.0"]

# ---- simulator: the local Payletter, for `docker compose up` demos only ------------------
FROM runtime AS simulator
COPY simulator ./simulator
ENV SIM_PORT=8001
EXPOSE 8001
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import os,urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/_sim/health' % os.environ.get('SIM_PORT', '8001'), timeout=2)"]
CMD ["python", "-m", "simulator", "--host", "0.0.0.0", "--port", "8001"]
