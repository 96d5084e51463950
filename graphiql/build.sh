#!/usr/bin/env bash
# Builds GraphiQL's assets into service/http/static/graphiql/ from the npm packages pinned in
# package-lock.json. Idempotent: installs only when node_modules is missing or older than the lock
# file, builds only when a source is newer than the last build's manifest.
#   graphiql/build.sh            build if needed
#   graphiql/build.sh --force    build anyway
# Needs Node >= 20 and npm (the npm registry is the only network access).
set -euo pipefail
cd "$(dirname "$0")"

force=0
case "${1:-}" in
    --force) force=1 ;;
    "") ;;
    *) echo "usage: $0 [--force]" >&2; exit 2 ;;
esac

for tool in node npm; do
    if ! command -v "$tool" >/dev/null; then
        echo "graphiql/build.sh: $tool is missing; install Node.js 20 or newer (Debian: apt-get install nodejs npm)" >&2
        exit 1
    fi
done

stamp=node_modules/.installed-from-lock
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ] || [ package.json -nt "$stamp" ]; then
    npm ci --no-audit --no-fund --loglevel=error
    touch "$stamp"
fi

manifest=../service/http/static/graphiql/manifest.json
if [ "$force" = 0 ] && [ -f "$manifest" ] \
    && [ -z "$(find src build.mjs package.json package-lock.json "$stamp" -newer "$manifest" -print -quit)" ]; then
    echo "graphiql: up to date ($manifest)"
    exit 0
fi
exec node build.mjs
