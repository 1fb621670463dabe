#!/usr/bin/env bash
# Builds the .deb with CPack, inspects it with dpkg-deb, then installs it
# into a scratch root with dpkg --root and checks the layout and the group.
# usage: package_test.sh BUILD_DIR
set -euo pipefail
build=$(readlink -f "$1")
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && cpack -G DEB --config "$build/CPackConfig.cmake" -B "$tmp/out" >/dev/null)
deb=$(ls "$tmp"/out/vigil_*_*.deb)
echo "built $(basename "$deb")"

info=$(dpkg-deb -I "$deb")
for dep in libbpf1 'libgrpc++1.51' libprotobuf32 libsystemd0 libabsl; do
  grep -q "^ Depends:.*$dep" <<<"$info" || { echo "Depends lacks $dep"; echo "$info"; exit 1; }
done
grep -q '^ Package: vigil$' <<<"$info" || { echo "wrong package name"; exit 1; }
[ "$(dpkg-deb -f "$deb" Architecture)" = "$(dpkg --print-architecture)" ] || { echo "wrong arch"; exit 1; }

layout=$(dpkg-deb -c "$deb" | awk '{print $6}')
for path in ./usr/sbin/vigild ./usr/bin/vigil ./lib/systemd/system/vigild.service \
            ./etc/vigil/vigild.conf ./usr/lib/sysusers.d/vigil.conf; do
  grep -qx "$path" <<<"$layout" || { echo "package lacks $path"; echo "$layout"; exit 1; }
done
dpkg-deb -e "$deb" "$tmp/control"
grep -qx /etc/vigil/vigild.conf "$tmp/control/conffiles" || { echo "config is not a conffile"; exit 1; }
# No surprise in postinst: it never enables or starts the service.
if grep -v '^ *#' "$tmp/control/postinst" | grep -E 'systemctl +(enable|start|restart)|deb-systemd-invoke'; then
  echo "postinst starts or enables services"; exit 1
fi

# Install for real into a scratch root: dpkg's own database, maintainer
# scripts run outside the root with DPKG_ROOT set.
root="$tmp/root"
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/etc"
touch "$root/var/lib/dpkg/status"
: > "$root/etc/group"; : > "$root/etc/passwd"
dpkg --root="$root" --force-depends --force-script-chrootless --force-not-root \
     --log=/dev/null -i "$deb" >/dev/null
for f in usr/sbin/vigild usr/bin/vigil; do
  [ -x "$root/$f" ] || { echo "$f not installed executable"; exit 1; }
done
for f in lib/systemd/system/vigild.service etc/vigil/vigild.conf; do
  [ -f "$root/$f" ] || { echo "$f not installed"; exit 1; }
done
grep -q '^vigil:' "$root/etc/group" || { echo "postinst did not create group vigil"; cat "$root/etc/group"; exit 1; }
dpkg --root="$root" -s vigil | grep -q '^Status: install ok installed' || { echo "dpkg does not see it installed"; exit 1; }
# The installed binary runs and the shipped config validates.
"$root/usr/sbin/vigild" --config "$root/etc/vigil/vigild.conf" --check-config
echo "PASS: package builds, inspects and installs"
