#!/usr/bin/env bash
# Installs Debian packages that are missing, without starting their services: the tests run
# private instances on loopback (nginx, PgBouncer), never the system's.
#
#   scripts/apt-install.sh <package>...
set -euo pipefail

missing=()
for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
echo "apt-install: installing the Debian packages ${missing[*]}" >&2
# invoke-rc.d asks policy-rc.d whether to start a service: 101 means no.
policy=/usr/sbin/policy-rc.d
placed=""
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
    $sudo chmod 755 "$policy"
    placed=1
fi
cleanup() { if [ -n "$placed" ]; then $sudo rm -f "$policy"; fi; }
trap cleanup EXIT
$sudo apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >&2
