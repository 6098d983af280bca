#!/usr/bin/env bash
# Idempotent: installs a single-node Ceph (mon, osd, radosgw) from the distribution's packages when
# its daemons are missing and we may install system packages; otherwise does nothing, silently.
set -euo pipefail
missing=0
for bin in radosgw ceph-mon ceph-osd; do
  command -v "$bin" >/dev/null 2>&1 || missing=1
done
if [ "$missing" = 0 ] || [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# apt and debconf chatter on stderr even when quiet; show it only when something fails.
run() { "$@" >"$log" 2>&1 || { cat "$log" >&2; exit 1; }; }
# A fresh image has no package lists, and without them apt-get cannot find the packages.
if ! apt-cache show radosgw >/dev/null 2>&1; then
  run apt-get update -q
fi
run apt-get install -y -q --no-install-recommends radosgw ceph-mon ceph-osd ceph-common
