#!/usr/bin/env bash
# Builds (once) a Debian 12 guest for the VM tests: kernel 6.1, systemd as
# init, Vigil's runtime dependencies baked in (the guest has no network).
# The result is cached outside the clone, keyed by a hash of this script,
# which holds the package list and the guest's setup, so an edit here makes
# a new image and a stale one is never reused.
#   build_image.sh [CACHE_ROOT]   prints the image directory on stdout:
#     DIR/vmlinuz DIR/initrd.img DIR/rootfs.img (raw ext4)
# Needs root, debootstrap, mkfs.ext4 and the apt mirror this host uses.
set -euo pipefail
# stdout carries only the image directory (the caller captures it); every
# tool's chatter goes to stderr.
exec 3>&1 1>&2
cache_root=${1:-${VIGIL_VM_CACHE:-/var/cache/vigil-vm}}

# systemd + udev + dbus: a real init. linux-image-amd64: Debian 12's 6.1.
# bpftool checks `systemctl stop` leaves no program behind. The libraries
# are vigil's Depends (dpkg-deb -f vigil_*.deb Depends: libdw1 for the
# profiler's unwind tables) and Recommends (libdebuginfod1), plus
# libelf1/zlib1g for build/tests/bpf_tests, whose gtest is linked statically;
# libncursesw6 for vigil top's interactive view (not in minbase).
packages=(
  systemd systemd-sysv udev dbus kmod procps iproute2
  linux-image-amd64 initramfs-tools
  libbpf1 bpftool libelf1 zlib1g libdw1 libdebuginfod1 liblzma5
  'libgrpc++1.51' libprotobuf32 libabsl20220623 libre2-9 libsystemd0 libcpp-httplib0.11
  libstdc++6 libncursesw6
)
key=$( { cat "$0"; printf '%s\n' "${packages[@]}"; } | sha256sum | cut -c1-16)
dir="$cache_root/$key"
if [ -f "$dir/rootfs.img" ]; then echo "$dir" >&3; exit 0; fi

mkdir -p "$cache_root"
exec 9>"$cache_root/.lock"
flock 9   # another run may be building the same image
if [ -f "$dir/rootfs.img" ]; then echo "$dir" >&3; exit 0; fi

# The mirror apt already uses here: no other source.
mirror=$(grep -hoE 'https?://[^ ]*debian(/)?$|https?://deb\.debian\.org/debian' \
  /etc/apt/sources.list /etc/apt/sources.list.d/* 2>/dev/null | head -1 || true)
mirror=${mirror:-http://deb.debian.org/debian}

work=$(mktemp -d "$cache_root/build.XXXXXX")
root="$work/root"
# debootstrap mounts proc and sys in the root; never rm -rf through a mount.
unmount_all() {
  local m
  for m in dev/pts dev proc sys; do
    if mountpoint -q "$root/$m" 2>/dev/null; then umount -l "$root/$m"; fi
  done
}
trap 'unmount_all; rm -rf --one-file-system "$work"' EXIT
echo "build_image: debootstrap bookworm from $mirror (about 3 minutes)" >&2
include=$(IFS=,; echo "${packages[*]}")
# Two stages, so the initramfs is configured before the kernel's postinst
# builds it: MODULES=list with the few virtio/ext4 modules this guest needs
# takes seconds, where Debian's MODULES=most took minutes here.
debootstrap --foreign --variant=minbase --include="$include" bookworm "$root" "$mirror" \
  > "$work/debootstrap.log" 2>&1 || { tail -30 "$work/debootstrap.log" >&2; exit 1; }
mkdir -p "$root/etc/initramfs-tools/conf.d" "$root/etc/initramfs-tools/hooks"
echo MODULES=list > "$root/etc/initramfs-tools/conf.d/vigil-vm.conf"
cat > "$root/etc/initramfs-tools/hooks/vigil-vm" <<'HOOK'
#!/bin/sh
[ "$1" = prereqs ] && exit 0
. /usr/share/initramfs-tools/hook-functions
for m in virtio_pci virtio_blk crc32c_generic ext4; do force_load "$m"; done
HOOK
chmod 755 "$root/etc/initramfs-tools/hooks/vigil-vm"
chroot "$root" /debootstrap/debootstrap --second-stage \
  >> "$work/debootstrap.log" 2>&1 || { tail -30 "$work/debootstrap.log" >&2; exit 1; }

# --- guest setup --------------------------------------------------------
echo vigil-vm > "$root/etc/hostname"
printf '/dev/vda / ext4 rw,relatime 0 1\n' > "$root/etc/fstab"
passwd -R "$root" -d root >/dev/null        # console login for debugging
# Static address on qemu's user network: no DHCP wait at boot.
mkdir -p "$root/etc/systemd/network"
cat > "$root/etc/systemd/network/10-eth.network" <<'NET'
[Match]
Name=en* eth*
[Network]
Address=10.0.2.15/24
Gateway=10.0.2.2
NET
ln -sf /lib/systemd/system/systemd-networkd.service \
  "$root/etc/systemd/system/multi-user.target.wants/systemd-networkd.service"
# Nothing the tests do not need: a quieter, faster boot.
for u in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer \
         systemd-networkd-wait-online.service; do
  ln -sf /dev/null "$root/etc/systemd/system/$u"
done

# The host drives the guest through a mailbox on the 9p share (the guest has
# no other channel): it writes cmd/N.sh, the guest runs it as root and writes
# N.out and, last, N.rc. The share is mounted at /host.
cat > "$root/usr/local/sbin/vm-mailbox" <<'MB'
#!/bin/bash
box=/host/mailbox
mkdir -p "$box"
echo up > "$box/ready"
while :; do
  for f in "$box"/*.sh; do
    [ -e "$f" ] || continue
    n=${f%.sh}
    mv "$f" "$n.run"
    bash "$n.run" > "$n.out" 2>&1 < /dev/null
    echo $? > "$n.rc.tmp" && mv "$n.rc.tmp" "$n.rc"
  done
  sleep 0.2
done
MB
chmod 755 "$root/usr/local/sbin/vm-mailbox"
cat > "$root/etc/systemd/system/vm-mailbox.service" <<'UNIT'
[Unit]
Description=VM test mailbox on the 9p share
Requires=host.mount
After=host.mount
[Service]
ExecStart=/usr/local/sbin/vm-mailbox
[Install]
WantedBy=multi-user.target
UNIT
cat > "$root/etc/systemd/system/host.mount" <<'UNIT'
[Unit]
Description=Host share (9p)
[Mount]
What=host
Where=/host
Type=9p
Options=trans=virtio,version=9p2000.L,msize=262144,rw
UNIT
ln -sf /etc/systemd/system/vm-mailbox.service \
  "$root/etc/systemd/system/multi-user.target.wants/vm-mailbox.service"
# Smaller image: no docs, no apt lists, no package cache.
rm -rf "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
       "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* "$root"/usr/share/man/* \
       "$root"/usr/share/locale/*
cp "$root"/boot/vmlinuz-* "$work/vmlinuz"
cp "$root"/boot/initrd.img-* "$work/initrd.img"
chmod 644 "$work/vmlinuz" "$work/initrd.img"
unmount_all
mkfs.ext4 -q -F -L vigil-vm -d "$root" "$work/rootfs.img" 2G
rm -rf "$root"
mkdir -p "$dir"
mv "$work/vmlinuz" "$work/initrd.img" "$work/rootfs.img" "$dir/"
echo "build_image: cached in $dir" >&2
echo "$dir" >&3
