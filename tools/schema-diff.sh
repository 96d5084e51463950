#!/usr/bin/env bash
# Reports breaking changes of the GraphQL schema (schema.graphql, kept equal to `service schema`
# by tests/test_schema_file.py) against the last commit on main, with @graphql-inspector/cli
# pinned in tools/package-lock.json. Compares the schema.graphql of the git work tree it is run
# in (the project's, from .ci/run).
#
#   tools/schema-diff.sh            compare with HEAD~1 (CI: a fresh clone of main, whose HEAD is
#                                   the commit under test, so HEAD~1 is main before it)
#   tools/schema-diff.sh REF        compare with REF instead (e.g. origin/main on a branch)
#   SCHEMA_DIFF_BASE=REF            the same, from the environment
#
# Breaking changes are printed, not fatal: the schema is generated from the models, so a breaking
# change is a deliberate model change that the reviewer already sees in schema.graphql's diff, and
# the API has no clients outside this repo to protect yet. The run fails only when the comparison
# itself cannot be made (npm, a schema that does not parse). Needs Node >= 20 and npm (`./dev`
# puts the venv's on PATH; so does this script when .venv exists).
set -euo pipefail
root=$(git rev-parse --show-toplevel)
cd "$(dirname "$0")"

base="${1:-${SCHEMA_DIFF_BASE:-HEAD~1}}"
if [ -x ../.venv/bin/node ]; then
    export PATH="$PWD/../.venv/bin:$PATH"
fi
for tool in node npm; do
    if ! command -v "$tool" >/dev/null; then
        echo "schema-diff: $tool is missing (run ./dev once: it installs Node.js into .venv)" >&2
        exit 1
    fi
done

if [ ! -f "$root/schema.graphql" ]; then
    echo "schema-diff: $root/schema.graphql is missing; write it with: ./dev schema > schema.graphql" >&2
    exit 1
fi
if ! git -C "$root" rev-parse --verify --quiet "$base^{commit}" >/dev/null; then
    # A repository's first commit, or a clone too shallow to hold the base.
    echo "schema-diff: no commit $base to compare with (first commit or shallow clone); nothing to report"
    exit 0
fi
old=$(mktemp "${TMPDIR:-/tmp}/schema-base.XXXXXX.graphql")
trap 'rm -f "$old"' EXIT
if ! git -C "$root" show "$base:schema.graphql" >"$old" 2>/dev/null; then
    echo "schema-diff: $base has no schema.graphql; nothing to compare with"
    exit 0
fi

stamp=node_modules/.installed-from-lock
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ] || [ package.json -nt "$stamp" ]; then
    npm ci --no-audit --no-fund --loglevel=error >&2
    touch "$stamp"
fi

echo "schema-diff: schema.graphql of $(git -C "$root" rev-parse --short "$base") ($base) -> working tree"
exec node node_modules/@graphql-inspector/cli/cjs/index.js diff "$old" "$root/schema.graphql" \
    --onComplete "$PWD/schema-diff-report.cjs"
