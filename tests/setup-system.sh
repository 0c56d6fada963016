#!/usr/bin/env bash
# System packages some tests use (Debian): Chromium for the rendered-report test and SLURM +
# MariaDB for the local cluster (tests/slurm/cluster.sh). Without root or apt the tests that need
# them skip and say why.
set -uo pipefail
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-system: not root or no apt-get; chromium and SLURM tests will skip"
  exit 0
fi
need=()
for pkg in chromium munge slurmctld slurmd slurm-client slurmdbd mariadb-server; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
    || echo "setup-system: could not install ${need[*]}; their tests will skip"
fi
echo "setup-system: done"
