#!/usr/bin/env bash
# Build the container image with Debian's buildah: no Docker daemon, works as root in a container.
#   deploy/build-image.sh [TAG]            (default localhost/service:dev)
# PYTHON_IMAGE is the base (the Dockerfile's default: python:3.11-slim-bookworm). Where no image
# registry can be reached (this project's machines reach only PyPI, npm and Debian), use
#   PYTHON_IMAGE=debian deploy/build-image.sh
# to make the base from Debian 12's own Python 3.11 with debootstrap, from the mirror this
# machine's apt uses. It is kept as localhost/python-bookworm-base:3.11, and it trusts this
# machine's CA bundle (for builds behind a TLS-inspecting proxy): a base for testing the image
# here, not for publishing.
set -euo pipefail
cd "$(dirname "$0")/.."
tag=${1:-localhost/service:dev}
export STORAGE_DRIVER="${STORAGE_DRIVER:-vfs}" BUILDAH_ISOLATION="${BUILDAH_ISOLATION:-chroot}"
base=${PYTHON_IMAGE:-python:3.11-slim-bookworm}

apt_mirror() {
    local uri
    uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    if [ -z "$uri" ]; then
        uri=$(awk '$1 == "deb" && $3 == "bookworm" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
    fi
    [ -n "$uri" ] || { echo "build-image.sh: no Debian mirror in /etc/apt/sources*" >&2; exit 1; }
    echo "$uri"
}

if [ "$base" = debian ]; then
    base=localhost/python-bookworm-base:3.11
    if ! buildah inspect --type image "$base" >/dev/null 2>&1; then
        rootfs=$(mktemp -d)
        trap 'rm -rf "$rootfs"' EXIT  # only the folder mktemp just made
        echo "build-image.sh: making $base with debootstrap (about a minute)" >&2
        debootstrap --variant=minbase --include=python3,python3-venv,python-is-python3,ca-certificates \
            bookworm "$rootfs" "$(apt_mirror)" >/dev/null
        cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
        rm -f "$rootfs"/var/cache/apt/archives/*.deb
        rm -rf "$rootfs"/var/lib/apt/lists
        ctr=$(buildah from scratch)
        cp -a "$rootfs"/. "$(buildah mount "$ctr")"/
        buildah umount "$ctr" >/dev/null
        certs=/etc/ssl/certs/ca-certificates.crt
        buildah config \
            --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
            --env LANG=C.UTF-8 --env PIP_CERT=$certs --env NODE_EXTRA_CA_CERTS=$certs \
            --env SSL_CERT_FILE=$certs --cmd python3 "$ctr"
        buildah commit --quiet "$ctr" "$base" >/dev/null
        buildah rm "$ctr" >/dev/null
    fi
fi

# Docker format: OCI image config has no HEALTHCHECK.
buildah bud --format docker --network host --layers=false --build-arg PYTHON_IMAGE="$base" --tag "$tag" .
