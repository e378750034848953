# perfgate's Action image: Python venv (pinned), ghz (pinned), bpftrace.
# The Action (action.yml) runs it with host network, host PID namespace and privileges
# (scripts/action-run.sh; docs/action.md says why). Every install step is scripts/setup.sh,
# the same script the README's setup and CI run.
#
# BASE_IMAGE: any Debian bookworm image. CI here builds FROM a debootstrapped local base
# (scripts/container.sh) because it reaches no registry.
ARG BASE_IMAGE=debian:bookworm-slim

# --- ghz: needs Go >= 1.23 (bookworm-backports) only in this stage ---------------------------
FROM ${BASE_IMAGE} AS ghz
COPY scripts/setup.sh /src/scripts/setup.sh
RUN echo "deb http://deb.debian.org/debian bookworm-backports main" > /etc/apt/sources.list.d/backports.list \
 && PERFGATE_SYSTEM_PACKAGES="golang-1.23-go ca-certificates" /src/scripts/setup.sh --system
ENV PATH=/usr/lib/go-1.23/bin:$PATH
RUN PERFGATE_TOOLS=/opt/perfgate/tools /src/scripts/setup.sh --ghz

# --- Python venv: pinned dependencies first (a layer that survives source edits), then perfgate ---
FROM ${BASE_IMAGE} AS python
COPY scripts/setup.sh /src/scripts/setup.sh
RUN PERFGATE_SYSTEM_PACKAGES="python3 python3-venv ca-certificates" /src/scripts/setup.sh --system
COPY requirements.lock /src/requirements.lock
RUN PERFGATE_VENV=/opt/perfgate/venv PERFGATE_PYTHON_INSTALL=deps /src/scripts/setup.sh --python
COPY pyproject.toml README.md /src/
COPY src /src/src
# The runtime needs neither pip/setuptools nor the packages' own test suites (~100 MB).
RUN PERFGATE_VENV=/opt/perfgate/venv PERFGATE_PYTHON_INSTALL=image /src/scripts/setup.sh --python \
 && /opt/perfgate/venv/bin/pip uninstall -q -y setuptools \
 && find /opt/perfgate/venv/lib -depth -type d -path '*/site-packages/*' -name tests -exec rm -rf {} + \
 && rm -rf /opt/perfgate/venv/lib/python3*/site-packages/pip /opt/perfgate/venv/bin/pip*

# --- runtime: no compilers, no Go, no pip ---------------------------------------------------
FROM ${BASE_IMAGE}
COPY scripts/setup.sh /src/scripts/setup.sh
RUN PERFGATE_SYSTEM_PACKAGES="python3 bpftrace ca-certificates" /src/scripts/setup.sh --system \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/cache/apt/archives/*.deb /src
COPY --from=ghz /opt/perfgate/tools/bin/ghz /opt/perfgate/tools/bin/ghz
COPY --from=python /opt/perfgate/venv /opt/perfgate/venv
COPY entrypoint.py /opt/perfgate/entrypoint.py
ENV PATH=/opt/perfgate/venv/bin:/opt/perfgate/tools/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
LABEL org.opencontainers.image.title="perfgate" \
      org.opencontainers.image.description="CI performance gate for gRPC services (GitHub Action image)" \
      org.opencontainers.image.licenses="Apache-2.0"
ENTRYPOINT ["/opt/perfgate/venv/bin/python", "/opt/perfgate/entrypoint.py"]
