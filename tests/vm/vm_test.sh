#!/usr/bin/env bash
# The .deb on a real systemd host with another kernel: boots a cached
# Debian 12 guest (kernel 6.1, systemd as PID 1) under qemu, installs the
# package there with apt, starts vigild with systemd, and checks it from
# this host through a forwarded port with mutual TLS. See tests/vm/README.md.
#   vm_test.sh BUILD_DIR SOURCE_DIR
# Exit 0: every check passed; 1: a check failed; 77: qemu cannot run here
# (the reason is printed).
set -euo pipefail
build=$(readlink -f "$1")
src=$(readlink -f "$2")
here=$(dirname "$(readlink -f "$0")")
t_start=$SECONDS

# In CI (CI=true or VIGIL_REQUIRE_BPF=1) a skip is a failure: a lost
# install step must not turn the stage green.
require=0
if [ "${CI:-}" = true ] || [ "${VIGIL_REQUIRE_BPF:-}" = 1 ]; then require=1; fi
skip() { echo "SKIP: $*"; [ "$require" = 1 ] && { echo "skips fail here (CI)"; exit 1; }; exit 77; }
[ "$(id -u)" -eq 0 ] || skip "needs root (debootstrap, the image cache in /var/cache)"
for tool in qemu-system-x86_64 debootstrap mkfs.ext4 cpack jq openssl; do
  command -v "$tool" >/dev/null || skip "$tool missing (deploy/install-deps.sh --test)"
done
[ -x "$build/vigil" ] || { echo "no $build/vigil: build first"; exit 1; }

tmp=$(mktemp -d /var/tmp/vigil-vm.XXXXXX)
qemu_pid=
cleanup() {
  if [ -n "$qemu_pid" ]; then kill "$qemu_pid" 2>/dev/null || true; wait "$qemu_pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# --- the package, the certificates and the guest's workloads -------------
share="$tmp/share"   # the guest's /host (9p, read-write): mailbox and files
mkdir -p "$share/mailbox" "$tmp/certs"
(cd "$tmp" && cpack -G DEB --config "$build/CPackConfig.cmake" -B "$tmp/deb" >/dev/null)
deb=$(ls "$tmp"/deb/vigil_*_*.deb)
cp "$deb" "$share/"
echo "package: $(basename "$deb") (Depends: $(dpkg-deb -f "$deb" Depends))"
bash "$src/tests/e2e/gen_certs.sh" "$tmp/certs"
cp "$tmp"/certs/{ca.pem,server.pem,server.key} "$share/"
cp "$build/tests/syscall_workload" "$share/"
t_deb=$SECONDS

# --- the image (cached) and the boot ------------------------------------
img=$(bash "$here/build_image.sh")
t_img=$SECONDS
echo "image: $img ($((t_img - t_deb)) s)"

free_port() {
  local p
  for _ in $(seq 50); do
    p=$((20000 + RANDOM % 20000))
    ss -Hltn "sport = :$p" | grep -q . || { echo "$p"; return; }
  done
  echo "no free port" >&2; return 1
}
port=$(free_port)
guest_port=7878
# A writable /dev/kvm is not proof that KVM runs a guest: nested KVM on some
# hosts accepts -accel kvm and then never executes a guest instruction (seen
# on the CI machine: nothing on the console in 45 s, TCG boots in 50). So
# boot the kernel alone under KVM and require its first console line within
# a few seconds; otherwise use TCG, and say which and why.
accel=tcg accel_why="no writable /dev/kvm"
if [ -w /dev/kvm ]; then
  probe_log="$tmp/kvm-probe.log"
  : > "$probe_log"
  timeout 20 qemu-system-x86_64 -accel kvm -m 256 -smp 1 -kernel "$img/vmlinuz" \
    -append "console=ttyS0 panic=-1" -display none -serial "file:$probe_log" \
    -monitor none -no-reboot -nodefaults >/dev/null 2>&1 &
  probe_pid=$!
  for _ in $(seq 50); do
    grep -q "Linux version" "$probe_log" 2>/dev/null && break
    kill -0 "$probe_pid" 2>/dev/null || break
    sleep 0.2
  done
  if grep -q "Linux version" "$probe_log" 2>/dev/null; then
    accel=kvm accel_why="KVM printed the kernel banner in the probe"
  else
    accel_why="KVM probe printed nothing in 10 s (nested KVM that does not run guests?)"
  fi
  kill "$probe_pid" 2>/dev/null || true
  wait "$probe_pid" 2>/dev/null || true
fi
# TCG runs both vCPUs on one host thread (thread=single). Twice in about
# ten runs (2026-12-07) the guest's two vCPUs soft-locked for minutes, both
# at the int3 the kernel puts on syscall_trace_enter's sys_enter jump label
# while it patches that text (vigild restarting attaches and detaches the
# syscall tracepoints); the lockup always followed config-restart, never
# replayed in 40 restarts under load, and points at multi-threaded TCG's
# handling of one vCPU rewriting code the other runs. One host thread for
# both removes that race; it is a mitigation, not a proven fix.
accel_opts=$accel
[ "$accel" = tcg ] && accel_opts="tcg,thread=single"
echo "accel: $accel_opts ($accel_why)"
# restrict=on: the guest reaches nothing; the host reaches the guest only
# through the forwarded port on 127.0.0.1. The disk is a snapshot: the
# cached image stays clean.
# boot: starts the guest and waits for its mailbox; 1 if it is not up in
# boot_timeout seconds (qemu_pid is the guest's).
boot() {
  rm -f "$tmp/console.log"
  qemu-system-x86_64 -accel "$accel_opts" -m 1536 -smp 2 \
    -kernel "$img/vmlinuz" -initrd "$img/initrd.img" \
    -append "console=ttyS0 root=/dev/vda rw quiet loglevel=5 systemd.show_status=0" \
    -drive "file=$img/rootfs.img,format=raw,if=virtio,snapshot=on" \
    -virtfs "local,path=$share,mount_tag=host,security_model=none,id=host" \
    -virtfs "local,path=$src,mount_tag=src,security_model=none,readonly=on,id=src" \
    -virtfs "local,path=$build,mount_tag=build,security_model=none,readonly=on,id=build" \
    -netdev "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:$port-:$guest_port" \
    -device virtio-net-pci,netdev=n0,romfile= \
    -display none -serial "file:$tmp/console.log" -monitor none -no-reboot &
  qemu_pid=$!
  # Should this script be killed outright (SIGKILL from a CTest timeout), the
  # guest goes with it.
  ( while kill -0 $$ 2>/dev/null; do sleep 2; done; kill "$qemu_pid" 2>/dev/null ) >/dev/null 2>&1 &
  for ((i = 0; i < boot_timeout * 5; i++)); do
    [ -f "$share/mailbox/ready" ] && return 0
    kill -0 "$qemu_pid" 2>/dev/null || { echo "qemu exited"; tail -30 "$tmp/console.log"; exit 1; }
    sleep 0.2
  done
  return 1
}

boot_timeout=300
if ! boot; then
  echo "guest not up in ${boot_timeout}s"
  tail -30 "$tmp/console.log"
  # Seen once under TCG (2026-12-07): the guest's udev workers soft-locked
  # for minutes and it never came up, then the same image booted in under
  # two minutes. One more boot for that case only, said in the log; any
  # other failure to come up fails at once.
  grep -q "soft lockup" "$tmp/console.log" || exit 1
  echo "boot: the guest soft-locked ($accel); booting it once more"
  kill "$qemu_pid" 2>/dev/null || true
  wait "$qemu_pid" 2>/dev/null || true
  boot || { echo "guest not up in ${boot_timeout}s, twice"; tail -30 "$tmp/console.log"; exit 1; }
fi
t_boot=$SECONDS
echo "boot: $((t_boot - t_img)) s ($accel), gRPC forwarded to 127.0.0.1:$port"

# guest [--timeout S] < SCRIPT: runs SCRIPT as root in the guest (through
# the mailbox), prints its output, returns its exit code.
guest() {
  local to=120
  if [ "${1:-}" = --timeout ]; then to=$2; shift 2; fi
  local id box="$share/mailbox"
  id=$(date +%s%N)
  cat > "$box/$id.tmp"
  mv "$box/$id.tmp" "$box/$id.sh"
  for ((i = 0; i < to * 5; i++)); do
    [ -f "$box/$id.rc" ] && break
    kill -0 "$qemu_pid" 2>/dev/null || { echo "guest: qemu exited"; return 1; }
    sleep 0.2
  done
  [ -f "$box/$id.rc" ] || { echo "guest: no answer in ${to}s"; cat "$box/$id.out" 2>/dev/null; return 1; }
  cat "$box/$id.out"
  return "$(cat "$box/$id.rc")"
}

vigil_cli() {
  local cmd=$1; shift
  "$build/vigil" "$cmd" --agent "127.0.0.1:$port" --ca "$tmp/certs/ca.pem" \
    --cert "$tmp/certs/client.pem" --key "$tmp/certs/client.key" --timeout 10s "$@"
}

fail() { echo "$*"; exit 1; }

# retry SECONDS CMD...: runs CMD until it succeeds, once per second.
retry() {
  local t=$1; shift
  for ((k = 0; k < t; k++)); do "$@" && return 0; sleep 1; done
  "$@"
}

passed=() failed=() skipped=()
# check NAME FUNCTION: runs one check, prints its log indented.
# VIGIL_VM_ONLY="name name...": run only those checks (while debugging one).
check() {
  local name=$1 rc t0=$SECONDS; shift
  if [ -n "${VIGIL_VM_ONLY:-}" ] && ! grep -qw -- "$name" <<<"$VIGIL_VM_ONLY"; then return 0; fi
  set +e
  ( set -e; "$@" ) > "$tmp/check.log" 2>&1
  rc=$?
  set -e
  sed 's/^/    /' "$tmp/check.log"
  case $rc in
    0) echo "PASS $name ($((SECONDS - t0)) s)"; passed+=("$name") ;;
    77) if [ "$require" = 1 ]; then
          echo "FAIL $name (would skip; skips fail here)"; failed+=("$name")
        else
          echo "SKIP $name"; skipped+=("$name")
        fi ;;
    *) echo "FAIL $name ($((SECONDS - t0)) s)"; failed+=("$name") ;;
  esac
}

source "$here/checks.sh"
run_checks

echo "times: package+certs $((t_deb - t_start)) s, image $((t_img - t_deb)) s," \
  "boot $((t_boot - t_img)) s, checks $((SECONDS - t_boot)) s, total $((SECONDS - t_start)) s"
echo "passed: ${#passed[@]} ${passed[*]:-}"
[ "${#skipped[@]}" -eq 0 ] || echo "skipped: ${skipped[*]}"
if [ "${#failed[@]}" -ne 0 ]; then
  echo "failed: ${failed[*]}"
  echo "--- guest console (last 40 lines) ---"; tail -40 "$tmp/console.log"
  # A guest soft lockup (seen once under TCG, 2026-12-07, after the
  # config-restart check) says where in its first report: loglevel=5 above
  # lets the kernel print the stack with it.
  if grep -q "soft lockup" "$tmp/console.log"; then
    echo "--- the guest's first soft lockup report ---"
    grep -m1 -A45 "soft lockup" "$tmp/console.log"
  fi
  exit 1
fi
