#!/usr/bin/env bash
# systemd-analyze verify passes on deploy/vigild.service with no warning
# (it exits 0 on unknown keys, so any output fails the test), and the
# hardening the agent depends on is present.
# usage: systemd_unit_test.sh SOURCE_DIR VIGILD_PATH
set -euo pipefail
src=$1 vigild=$2
command -v systemd-analyze >/dev/null || { echo "SKIP: systemd-analyze not installed"; exit 77; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
# verify checks that ExecStart exists: point it at the build's binary.
sed "s|/usr/sbin/vigild|$vigild|g" "$src/deploy/vigild.service" > "$tmp/vigild.service"
out=$(systemd-analyze verify "$tmp/vigild.service" 2>&1) || { echo "verify failed: $out"; exit 1; }
if [ -n "$out" ]; then echo "verify warned: $out"; exit 1; fi
unit="$src/deploy/vigild.service"
for want in 'Type=notify' 'WatchdogSec=' 'Restart=on-failure' 'NoNewPrivileges=yes' \
            'ProtectSystem=strict' 'ProtectHome=' 'PrivateTmp=yes' 'RuntimeDirectory=vigil' \
            'MemoryMax=' 'CPUQuota=' 'CapabilityBoundingSet=CAP_BPF CAP_PERFMON'; do
  grep -q "^$want" "$unit" || { echo "unit lacks $want"; exit 1; }
done
# The bounding set is small: nothing that administers the machine.
if grep '^CapabilityBoundingSet=' "$unit" | grep -qE 'CAP_SYS_ADMIN|CAP_NET_ADMIN|CAP_SYS_MODULE'; then
  echo "bounding set too wide"; exit 1
fi
echo "PASS: vigild.service verifies cleanly"
