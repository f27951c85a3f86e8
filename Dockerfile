# syntax=docker/dockerfile:1
# closeloop: the daemon, the CLI and the vendor sandboxes (the closeloop[sandbox] extra; `closeloop run` never
# loads them) in one image.
#   docker build -t closeloop .
#   docker run --read-only --tmpfs /tmp -v closeloop-state:/var/lib/closeloop \
#     -v "$PWD/config:/etc/closeloop:ro" -e CLOSELOOP_CONFIG=/etc/closeloop/closeloop.yaml -p 8080:8080 closeloop

# Stage 1: build closeloop's wheel and the wheels of everything it needs.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
COPY connectors ./connectors
RUN pip wheel --no-cache-dir --wheel-dir /wheels '.[sandbox]'

# Stage 2: install from those wheels only; no compiler, no source tree, no pip cache.
FROM python:3.11-slim
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels 'closeloop[sandbox]'

# A read-only root filesystem needs no .pyc writes; logs must reach the runtime unbuffered.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CLOSELOOP_CONFIG=/etc/closeloop/closeloop.yaml \
    CLOSELOOP_STATE_DIR=/var/lib/closeloop \
    CLOSELOOP_HTTP_HOST=0.0.0.0 \
    CLOSELOOP_HTTP_PORT=8080 \
    CLOSELOOP_LOG_FORMAT=json \
    CLOSELOOP_GRACE_SECONDS=30

# The example configuration; mount your own over /etc/closeloop.
COPY config /etc/closeloop
# The state volume is the only place closeloop writes; owned by the numeric user it runs as.
RUN mkdir -p /var/lib/closeloop && chown 10001:10001 /var/lib/closeloop && chmod 0700 /var/lib/closeloop
USER 10001:10001
VOLUME /var/lib/closeloop
EXPOSE 8080

# Readiness, not only liveness: the last runs are not failing and the state store is writable (no curl in slim).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('CLOSELOOP_HTTP_PORT', '8080'), timeout=4)"]

# SIGTERM goes straight to closeloop (exec form), which stops within CLOSELOOP_GRACE_SECONDS.
STOPSIGNAL SIGTERM
ENTRYPOINT ["closeloop"]
CMD ["run"]
