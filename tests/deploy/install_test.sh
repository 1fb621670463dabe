#!/usr/bin/env bash
# cmake --install lays out the binaries, the unit and the config.
# usage: install_test.sh BUILD_DIR
set -euo pipefail
build=$(readlink -f "$1")
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
DESTDIR="$tmp" cmake --install "$build" --prefix /usr >/dev/null
for f in usr/sbin/vigild usr/bin/vigil lib/systemd/system/vigild.service \
         etc/vigil/vigild.conf usr/lib/sysusers.d/vigil.conf usr/share/doc/vigil/README.md \
         usr/share/doc/vigil/prometheus/vigil-alerts.yml; do
  [ -e "$tmp/$f" ] || { echo "missing $f"; find "$tmp" -type f; exit 1; }
done
"$tmp/usr/sbin/vigild" --version | grep -q '^vigild ' || { echo "installed vigild does not run"; exit 1; }
echo "PASS: cmake --install layout"
