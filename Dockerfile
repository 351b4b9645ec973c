# The Payletter gateway: a small image that runs as a non-root user.
#   docker build -t payletter-gateway .                       (the service: the last stage)
#   docker build --target simulator -t payletter-simulator .  (the local Payletter, for demos)
# No registry at hand? `make image-check` builds a local Debian base and passes it as
#   --build-arg PYTHON_IMAGE=<that image>.

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
COPY demo ./demo
RUN /opt/venv/bin/pip install --no-deps .

# ---- base: the venv and an unprivileged user, shared by both images ---------------------
FROM ${PYTHON_IMAGE} AS base
RUN groupadd --system --gid 10001 gateway \
 && useradd --system --uid 10001 --gid gateway --home-dir /srv --shell /usr/sbin/nologin gateway
COPY --from=build /opt/venv /opt/venv
WORKDIR /srv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

# ---- simulator: the local Payletter, for demos only (`--target simulator`) --------------
# One process on purpose: its payments live in memory, so two workers would not share them.
FROM base AS simulator
COPY simulator ./simulator
ENV SIM_PORT=8001 \
    WEB_CONCURRENCY=1
USER 10001:10001
EXPOSE 8001
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import os,urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/_sim/health' % os.environ.get('SIM_PORT', '8001'), timeout=2)"]
# --port comes from SIM_PORT.
CMD ["python", "-m", "simulator", "--host", "0.0.0.0"]

# ---- gateway: the service; the last stage, so a plain `docker build` makes this one ------
FROM base AS gateway
COPY alembic.ini ./
COPY migrations ./migrations
# The embedded SQLite database (the default DATABASE_URL, ./var/gateway.db) lives on this
# volume, writable by the service's user; PostgreSQL deployments simply leave it empty.
RUN mkdir /srv/var && chown 10001:10001 /srv/var
VOLUME ["/srv/var"]
# GRACEFUL_SHUTDOWN_SECONDS stays under `docker stop`'s default 10 s; raise both together
# (`docker run --stop-timeout`, compose's stop_grace_period).
ENV PORT=8000 \
    WEB_CONCURRENCY=2 \
    GRACEFUL_SHUTDOWN_SECONDS=8 \
    LOG_FORMAT=json
USER 10001:10001
EXPOSE 8000
# Healthy means ready: the process answers and its database does (/readyz).
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD ["python", "-c", "import os,urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('PORT', '8000'), timeout=2)"]
# `serve` runs uvicorn with --no-proxy-headers (the app decides who calls, from
# TRUSTED_PROXIES), WEB_CONCURRENCY workers with their metrics summed, JSON logs from every
# process, and a graceful shutdown: on SIGTERM, in-flight callbacks finish and the webhook
# dispatcher completes its batch. On SQLite it migrates the database first.
CMD ["payletter-gateway", "serve", "--host", "0.0.0.0"]
