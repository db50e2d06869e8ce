# One image for the Hodei server and workers: ENTRYPOINT ["hodei"].
#
#   docker run IMAGE server            (HODEI_DATABASE_URL, HODEI_HOST, HODEI_PORT, ...)
#   docker run IMAGE worker --server HOST:PORT --slots N
#   docker run IMAGE db migrate
#
# The project and all its dependencies are installed offline from a wheelhouse
# built beforehand on the host, so the build needs no package registry:
#
#   python -m pip wheel --wheel-dir .ci/wheelhouse .
#   docker build -t hodei/hodei:dev .
#
# Where no registry is reachable at all (CI), BASE_IMAGE is a local image with
# Debian's python3 + python3-venv (docker/python-base/Dockerfile); see docs/containers.md.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ARG WHEELHOUSE=.ci/wheelhouse
ENV LANG=C.UTF-8 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/hodei/bin:$PATH

# A venv (not the system site-packages): Debian's python3 refuses system-wide pip
# installs (PEP 668), and the slim image behaves the same inside a venv.
COPY ${WHEELHOUSE}/ /wheels/
RUN set -eux; \
    python3 -m venv /opt/hodei; \
    # [docker]: a server here may start worker containers (the Docker provider,
    # HODEI_PROVIDERS_FILE) through a mounted Docker socket.
    /opt/hodei/bin/python -m pip install --no-cache-dir --no-index --find-links /wheels "hodei[docker]"; \
    rm -rf /wheels; \
    /opt/hodei/bin/python -c "import hodei.cli.main, hodei.diagnose.cli, grpc_health.v1.health_pb2, docker"; \
    # The runtime image is the platform only: no test framework (the [e2e] extra).
    if /opt/hodei/bin/python -c "import pytest" 2>/dev/null; then \
        echo "pytest is installed in the runtime image" >&2; exit 1; \
    fi

COPY docker/hodei/healthcheck.py /opt/hodei/healthcheck.py
RUN set -eux; \
    printf '#!/bin/sh\nexec /opt/hodei/bin/python /opt/hodei/healthcheck.py "$@"\n' \
        > /usr/local/bin/hodei-healthcheck; \
    chmod 0755 /usr/local/bin/hodei-healthcheck; \
    useradd --create-home --home-dir /home/hodei --shell /bin/sh --uid 10001 hodei; \
    # Where the compose file's `tokens` volume is mounted: a new named volume takes
    # this directory's owner and mode, so only the hodei user can read the tokens.
    install -d -o hodei -g hodei -m 0700 /tokens

USER hodei
WORKDIR /home/hodei
# The server listens on every interface inside a container (the settings default
# is 127.0.0.1, right for a laptop and for host networking). Authentication stays on
# (HODEI_AUTH=required, the default): make tokens with `hodei token create`.
ENV HODEI_HOST=0.0.0.0 \
    HODEI_PORT=50051
EXPOSE 50051
# Applies to the server; a worker container answers nothing here, so compose
# files and the containers launcher set (or disable) the check per service.
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=3 \
    CMD ["hodei-healthcheck"]
ENTRYPOINT ["hodei"]
CMD ["--help"]
