# syntax=docker/dockerfile:1.7
#
# One image for every SQI process. The process is chosen by the Kubernetes
# `command` (see k8s/base); the default CMD runs the gateway.
#
#   gateway API   uvicorn gateway.app:create_app --factory --no-proxy-headers --host 0.0.0.0 --port 8000
#   service API   uvicorn services.<name>.api.app:create_app --factory --host 0.0.0.0 --port 8000
#   worker        python -m services.<name>.worker
#   migrations    python -m sqi_cli migrate        (a Job before each roll-out, never at start-up)
#
# Build:  docker build -t registry.example.gov.vn/sqi/sqi:$(git rev-parse --short HEAD) .

ARG PYTHON_IMAGE=python:3.11-slim

# ---------------------------------------------------------------------------
# build stage: resolve and install into /opt/venv; nothing of this stage but the
# virtual environment reaches the runtime image (no pip cache, no sources, no
# build backend).
# ---------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH

WORKDIR /src

# Dependencies first, so that a code change does not re-download them.
#
# requirements.lock is compiled *with* the dev group (pytest, mypy, ruff,
# playwright, ...). The image must not carry dev tools, so the lock is used as a
# *constraints* file: pip installs exactly the runtime dependencies declared in
# pyproject.toml's [project].dependencies, each pinned to the version in the lock.
COPY pyproject.toml requirements.lock ./
RUN python - <<'PY' > /tmp/runtime-requirements.txt
import tomllib
with open("pyproject.toml", "rb") as f:
    print("\n".join(tomllib.load(f)["project"]["dependencies"]))
PY
RUN pip install --no-cache-dir --require-virtualenv \
        -r /tmp/runtime-requirements.txt -c requirements.lock

# Then the project itself, without touching the dependency set resolved above.
COPY shared ./shared
COPY services ./services
COPY gateway ./gateway
COPY sim ./sim
COPY sqi_cli ./sqi_cli
RUN pip install --no-cache-dir --require-virtualenv --no-deps . && pip check

# Fail the build, not the pod, when packaging left out an entry point.
RUN python - <<'PY'
import importlib.util, sys
mods = ["gateway.app", "sqi_cli.__main__"] + [
    f"services.{n}.{m}" for n in ("ingest", "scoring", "feedback", "reporting")
    for m in ("api.app", "worker")
]
missing = [m for m in mods if importlib.util.find_spec(m) is None]
sys.exit(f"entry-point modules missing from the installed package: {missing}" if missing else 0)
PY

# Pre-compile bytecode: the runtime root filesystem is read-only.
RUN python -m compileall -q /opt/venv/lib

# ---------------------------------------------------------------------------
# runtime stage
# ---------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

# Fixed numeric ids: Kubernetes' runAsNonRoot can only verify a numeric USER.
ARG SQI_UID=10001
RUN groupadd --system --gid ${SQI_UID} sqi \
 && useradd --system --uid ${SQI_UID} --gid sqi --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin sqi

# The PDF briefing: WeasyPrint's Pango and fonts with every Vietnamese glyph (DejaVu).
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core fonts-dejavu-extra \
 && rm -rf /var/lib/apt/lists/*

COPY --from=build /opt/venv /opt/venv
# Reference data (units, procedures, rating criteria) loaded by the CLI/seeding.
COPY --chown=root:root data /app/data

ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    # The reference data copied above: the settings' default (next to the sources) does not
    # exist once the packages are installed into the venv (feedback reads it at start-up).
    SQI_REFERENCE_DIR=/app/data/reference \
    # Writable scratch lives on the /tmp emptyDir in Kubernetes.
    TMPDIR=/tmp \
    HOME=/tmp \
    XDG_CACHE_HOME=/tmp/.cache

WORKDIR /app
USER 10001:10001
EXPOSE 8000

CMD ["uvicorn", "gateway.app:create_app", "--factory", "--no-proxy-headers", "--host", "0.0.0.0", "--port", "8000"]
