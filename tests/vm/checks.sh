# The VM scenario's checks, sourced by vm_test.sh. Each check is a function
# run in a subshell with `set -e`; it prints what it saw and exits non-zero
# (via `fail`) on a mismatch, 77 to skip with a reason. Helpers from
# vm_test.sh: guest (run a script in the guest), vigil_cli (the host's CLI
# over mTLS to the guest's vigild), retry, fail. Adding a capability's check
# is one function and one line in run_checks.

conf=/etc/vigil/vigild.conf

# apt installs the .deb offline (its Depends are in the image), the config
# gets a TCP listener with mutual TLS, and systemd starts the unit.
check_install() {
  guest <<EOF
set -e
apt-get install -y -q /host/$(basename "$deb") 2>&1 | tail -3
install -d -m 0750 /etc/vigil/tls
install -m 0644 /host/server.pem /host/ca.pem /etc/vigil/tls/
install -m 0600 /host/server.key /etc/vigil/tls/
cat >> $conf <<CONF
listen = 0.0.0.0:$guest_port
tls-cert = /etc/vigil/tls/server.pem
tls-key = /etc/vigil/tls/server.key
tls-client-ca = /etc/vigil/tls/ca.pem
CONF
cp $conf /root/vigild.conf.good
getent group vigil
# What BPF the guest runs before vigild (systemd's own cgroup programs).
bpftool prog show | grep -c '^[0-9]*:' > /root/progs.before || true
bpftool link show | grep -c '^[0-9]*:' > /root/links.before || true
systemctl enable --now vigild
EOF
}

# Type=notify: active only after READY, and the STATUS line names what is attached.
check_active() {
  local out
  out=$(guest <<<'systemctl is-active vigild; systemctl status vigild --no-pager -n 0 || true')
  echo "$out"
  [ "$(head -1 <<<"$out")" = active ] || fail "vigild is not active"
  grep -Eq 'Status: "vigild .*: attached \(syscalls, udpdrops\); listening on 0\.0\.0\.0:'"$guest_port" <<<"$out" \
    || fail "systemctl status lacks the READY status text"
}

# A workload with known per-thread counts runs in the guest; the host's CLI
# reads them over mTLS, thread by thread, exactly.
check_syscalls() {
  local out pid json
  out=$(guest <<<'/host/syscall_workload 3')
  echo "$out"
  pid=$(awk '$1 == "pid" {print $2}' <<<"$out")
  [ -n "$pid" ] || fail "workload printed no pid"
  got() {
    json=$(vigil_cli syscalls --pid "$pid" --since 5m --json) || return 1
    [ "$(jq '.threads | length' <<<"$json")" -ge 3 ]
  }
  retry 15 got || fail "vigil syscalls --pid $pid: no 3 threads: $json"
  while read -r _ tid _ getppid _ close _ access _ access_err; do
    local c
    c=$(jq -r --argjson t "$tid" '.threads[] | select(.tid == $t) | .syscalls[]
          | "\(.name) \(.calls) \(.errors // "0")"' <<<"$json" | sort)
    echo "tid $tid: $(tr '\n' ' ' <<<"$c")"
    grep -qx "getppid $getppid 0" <<<"$c" || fail "tid $tid: getppid want $getppid"
    grep -qx "close $close $close" <<<"$c" || fail "tid $tid: close want $close (all failed)"
    grep -qx "access $access $access_err" <<<"$c" || fail "tid $tid: access want $access ($access_err failed)"
  done < <(grep '^tid ' <<<"$out")
}

run_checks() {
  check install check_install
  [ "${#failed[@]}" -eq 0 ] || return 0   # nothing else can pass
  check active check_active
  check syscalls-mtls check_syscalls
}
