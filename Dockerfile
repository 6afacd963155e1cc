# onepin-exporter container image.
#
#   docker build -t onepin-exporter .
#   docker run -p 9879:9879 -e ONEPIN_API_TOKEN=op_live_... onepin-exporter
#
# The default command reads /etc/onepin-exporter/config.yaml, which is config.example.yaml (every
# workflow of the key's workspace, token from $ONEPIN_API_TOKEN); mount your own over it.
# Dependencies are installed from the hashed requirements.lock (regenerate with deploy/lock.sh).
# docs/deploy.md has the details: building from a local base image, behind a TLS proxy, etc.

# Any image with Python 3.11 and its venv module works as the base (both stages use the same one,
# because the virtualenv links to the base's interpreter).
ARG BASE=python:3.11-slim-bookworm
# What the image's OCI labels say (and REVISION what `onepin-exporter --version` prints): the build
# context has no .git, so they come from the builder, e.g.
#   docker build --build-arg VERSION=0.1.0 --build-arg REVISION="$(git rev-parse --short=12 HEAD)" \
#     --build-arg CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)" -t onepin-exporter .
ARG SOURCE=https://github.com/onepin/onepin-exporter
ARG VERSION=unknown
ARG REVISION=unknown
ARG CREATED=unknown

FROM ${BASE} AS builder
# Optional: a CA bundle for pip, for builds behind a TLS-intercepting proxy (mount it into the
# build, e.g. `podman build -v /etc/ssl/certs/ca-certificates.crt:/run/ca.crt:ro
# --build-arg PIP_CERT=/run/ca.crt`). Unset, pip uses its own CA bundle.
ARG PIP_CERT
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# Two virtualenvs: /opt/build holds the wheel's build backend, /opt/venv is what ships.
COPY requirements.lock requirements-build.lock ./
RUN python3 -m venv /opt/build \
    && python3 -m venv /opt/venv \
    && /opt/build/bin/python -m pip install --require-hashes --only-binary=:all: \
        --no-deps -r requirements-build.lock \
    && /opt/venv/bin/python -m pip install --require-hashes --only-binary=:all: \
        --no-deps -r requirements.lock
COPY pyproject.toml setup.py README.md LICENSE ./
COPY exporter ./exporter
ARG REVISION
# The project itself: a wheel built offline from the locked backend (setup.py writes REVISION
# into it), installed without dependencies (all of them came from the lock above), then pip
# itself leaves the venv.
RUN ONEPIN_EXPORTER_REVISION="${REVISION}" /opt/build/bin/python -m pip wheel \
        --no-build-isolation --no-deps --no-index --wheel-dir /dist . \
    && /opt/venv/bin/python -m pip install --no-deps --no-index --find-links /dist onepin-exporter \
    && /opt/venv/bin/python -m pip check \
    && /opt/venv/bin/python -m pip uninstall --yes pip setuptools


FROM ${BASE}
ARG SOURCE
ARG VERSION
ARG REVISION
ARG CREATED
LABEL org.opencontainers.image.title="onepin-exporter" \
      org.opencontainers.image.description="Prometheus exporter for OnePin workflow runs" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.url="${SOURCE}" \
      org.opencontainers.image.documentation="${SOURCE}/blob/main/README.md" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"
COPY --from=builder /opt/venv /opt/venv
COPY config.example.yaml /etc/onepin-exporter/config.yaml
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ONEPIN_HEALTHCHECK_URL=http://127.0.0.1:9879/-/healthy
# No shell or passwd entry needed: a fixed numeric UID/GID ("nonroot" in distroless images), so
# that Kubernetes' runAsNonRoot can verify it.
USER 65532:65532
EXPOSE 9879
# The image has no curl; Python's urllib is enough. If you move the listen address (or serve
# TLS), set ONEPIN_HEALTHCHECK_URL to match.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['ONEPIN_HEALTHCHECK_URL'], timeout=4)"]
# The exporter is PID 1 and handles SIGTERM/SIGINT itself: `docker stop` ends it at once.
ENTRYPOINT ["onepin-exporter"]
CMD ["--config.file=/etc/onepin-exporter/config.yaml"]
