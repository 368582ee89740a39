#!/usr/bin/env bash
# Install PostgreSQL's server binaries for the job store tests (tests/jobs/test_store.py), which
# start a throwaway cluster with initdb/pg_ctl under a temporary directory. Debian's package;
# the tests find the binaries under /usr/lib/postgresql/*/bin. Safe to run again.
set -euo pipefail
if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "install_postgres.sh: not root and no sudo: install Debian's postgresql package by hand" >&2
    exit 1
  fi
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends postgresql >/dev/null
