#!/usr/bin/env bash
# Installs what iochub's build, demo and tests need on Debian, idempotently.
# Usage: scripts/install-deps.sh [--browser]
#   --browser  also install Debian's Chromium for the wall-screen browser test.
set -euo pipefail

need=()
# protoc and the well-known types, for `make proto` (regenerates proto/ioc/v1).
if ! command -v protoc >/dev/null 2>&1; then
  need+=(protobuf-compiler)
fi
if [ ! -f /usr/include/google/protobuf/timestamp.proto ]; then
  need+=(libprotobuf-dev)
fi
if [ ! -f /usr/share/postgresql/15/extension/postgis.control ]; then
  need+=(postgresql-15-postgis-3)
fi
if [ ! -x /usr/lib/postgresql/15/bin/initdb ]; then
  need+=(postgresql-15)
fi
# GDAL's ogrinfo, for the OGC API – Features test (the OAPIF driver reads the hub like QGIS does).
if ! command -v ogrinfo >/dev/null 2>&1; then
  need+=(gdal-bin)
fi
if [ "${1:-}" = "--browser" ] && ! command -v chromium >/dev/null 2>&1; then
  need+=(chromium)
fi
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi
echo "installing: ${need[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
