# The Python services (hub, worker, migrate) in one image; the command picks the role.
# Build: docker build -t hubbub .   Run: see docker-compose.yml.
FROM node:20-bookworm-slim AS frontend
WORKDIR /src/frontend
ENV NEXT_TELEMETRY_DISABLED=1
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend/ ./
RUN npm run build

FROM python:3.11-slim-bookworm AS app
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HUBBUB_ENV=production \
    HUBBUB_HOST=0.0.0.0 \
    HUBBUB_ADMIN_PORT=9080 \
    HUBBUB_FRONTEND_DIR=/app/frontend/out
WORKDIR /app
RUN groupadd --system --gid 10001 hubbub \
 && useradd --system --uid 10001 --gid hubbub --home-dir /app --shell /usr/sbin/nologin hubbub
COPY requirements.lock pyproject.toml README.md alembic.ini ./
COPY hubbub/ hubbub/
COPY hub/ hub/
COPY workers/ workers/
COPY handlers/ handlers/
COPY migrations/ migrations/
COPY cli/ cli/
RUN pip install -c requirements.lock . && rm -rf /root/.cache
COPY --from=frontend /src/frontend/out /app/frontend/out
USER 10001:10001
# 8080: the public listener. 9080: the admin listener (/metrics, /ready with details), on
# the container's loopback unless HUBBUB_ADMIN_HOST=0.0.0.0 (docker-compose.yml sets it,
# for Prometheus on the compose network; never publish it).
EXPOSE 8080 9080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s \
  CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/api/v1/health', timeout=2).status != 200)"]
CMD ["hubbub", "serve"]
