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
  grep -Eq 'Status: "vigild .*: attached \(cpu, syscalls, udpdrops, memory\); listening on 0\.0\.0\.0:'"$guest_port" <<<"$out" \
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
  # The workload has exited, but its last calls may sit in an interval not
  # collected yet (a thread can straddle a drain): wait for every count to
  # be exact, and name the first that is not.
  local why="" seen=""
  exact() {
    seen=""
    json=$(vigil_cli syscalls --pid "$pid" --since 5m --json) || { why="query failed"; return 1; }
    local _a tid _b getppid _c close _d access _e access_err c
    while read -r _a tid _b getppid _c close _d access _e access_err; do
      c=$(jq -r --argjson t "$tid" '.threads[] | select(.tid == $t) | .syscalls[]
            | "\(.name) \(.calls) \(.errors // "0")"' <<<"$json" | sort)
      why="tid $tid: $(tr '\n' ' ' <<<"$c")"
      grep -qx "getppid $getppid 0" <<<"$c" || { why+="; getppid want $getppid"; return 1; }
      grep -qx "close $close $close" <<<"$c" || { why+="; close want $close (all failed)"; return 1; }
      grep -qx "access $access $access_err" <<<"$c" \
        || { why+="; access want $access ($access_err failed)"; return 1; }
      seen+="$why"$'\n'
    done < <(grep '^tid ' <<<"$out")
  }
  retry 15 exact || fail "vigil syscalls --pid $pid after 15 s: $why"
  printf '%s' "$seen"
}

# Bash's /dev/udp sends datagrams to a port nothing listens on in the guest:
# the kernel drops each one as NO_SOCKET, and vigil drops counts them all.
check_drops() {
  local out json n=25 udp_port=9999
  out=$(guest <<EOF2
before=\$(awk '/^Udp:/ {getline; print \$3; exit}' /proc/net/snmp)
for i in \$(seq $n); do echo drop > /dev/udp/127.0.0.1/$udp_port; done 2>/dev/null
after=\$(awk '/^Udp:/ {getline; print \$3; exit}' /proc/net/snmp)
echo "NoPorts delta \$((after - before))"
EOF2
)
  echo "$out"
  got() {
    json=$(vigil_cli drops --port "$udp_port" --since 5m --json) || return 1
    [ "$(jq '[.drops[] | .count | tonumber] | add // 0' <<<"$json")" -ge "$n" ]
  }
  retry 15 got || true
  jq -c '.drops[] | {reason, local_addr, local_port, count}' <<<"$json"
  [ "$(jq '[.drops[] | .count | tonumber] | add // 0' <<<"$json")" -eq "$n" ] \
    || fail "want $n drops on port $udp_port"
  [ "$(jq -r '[.drops[].reason] | unique | join(",")' <<<"$json")" = NO_SOCKET ] \
    || fail "want reason NO_SOCKET"
  grep -qx "NoPorts delta $n" <<<"$out" || fail "the guest's NoPorts moved by other than $n"
}

# Feature probing on 6.1: kfree_skb has a reason but no rx_sk, so udpdrops
# joins udp_fail_queue_rcv_skb for the socket (on 6.11+ it would not).
check_probing() {
  local out
  out=$(guest <<<'uname -r; bpftool prog show | grep -o "name vigil_[a-z_]*" | sort')
  echo "$out"
  grep -q '^6\.1\.' <<<"$out" || fail "guest kernel is not 6.1"
  grep -q 'name vigil_udp_fail' <<<"$out" || fail "udp_fail_queue_rcv_skb not attached on 6.1"
  grep -q 'name vigil_sys_enter' <<<"$out" || fail "sys_enter not attached"
  # One mark_victim variant, the one the kernel's BTF matches (Debian's
  # 6.1.0-50 carries the (task, uid) one, backported; 6.1.0 had (pid)).
  grep -Eq 'name vigil_mark_victim_(pid|task)' <<<"$out" || fail "no mark_victim variant attached"
  grep -q 'name vigil_memory_iter' <<<"$out" || fail "memory task iterator not loaded"
  vigil_cli status | grep -E '^  (syscalls|udpdrops|memory) '
}

# The hardening leaves every capability working: status over mTLS says so.
check_status_running() {
  local out
  out=$(vigil_cli status)
  echo "$out"
  grep -Eq '^  syscalls +running$' <<<"$out" || fail "syscalls not running"
  grep -Eq '^  udpdrops +running$' <<<"$out" || fail "udpdrops not running"
  # Growth alerts need neither spin nor the profiler (off while it waits
  # for perf_event_paranoid): never degraded by the sandbox.
  grep -Eq '^  memory +running$' <<<"$out" || fail "memory not running"
}

# CapabilityBoundingSet holds: bounding and effective sets are exactly
# CAP_DAC_READ_SEARCH(2) CAP_SYS_PTRACE(19) CAP_SYS_RESOURCE(24)
# CAP_SYSLOG(34) CAP_PERFMON(38) CAP_BPF(39), and NoNewPrivileges is on.
check_caps() {
  local out want=000000c401080004
  out=$(guest <<<'pid=$(systemctl show -p MainPID --value vigild); grep -E "^(CapEff|CapPrm|CapBnd|NoNewPrivs)" /proc/$pid/status')
  echo "$out"
  grep -qx "CapBnd:	$want" <<<"$out" || fail "CapBnd is not $want"
  grep -qx "CapEff:	$want" <<<"$out" || fail "CapEff is not $want"
  grep -qx "NoNewPrivs:	1" <<<"$out" || fail "NoNewPrivs is not set"
}

# A changed setting plus `systemctl restart` takes effect.
check_config_restart() {
  guest <<<"echo 'interval = 2s' >> $conf && systemctl restart vigild && systemctl is-active vigild"
  shows_2s() { vigil_cli status | grep -q 'interval 2s'; }
  retry 15 shows_2s || fail "vigil status does not show interval 2s"
  vigil_cli status | grep interval
  guest <<<"cp /root/vigild.conf.good $conf && systemctl restart vigild && systemctl is-active vigild"
}

# A bad config fails the unit (ExecStartPre=vigild --check-config) with one
# journal line naming file:line.
check_bad_config() {
  local out line
  out=$(guest <<EOF2
echo 'interval = soon' >> $conf
line=\$(wc -l < $conf)
echo "bad line \$line"
systemctl restart vigild && echo "restart succeeded" || echo "restart failed"
sleep 1
systemctl is-active vigild || true
journalctl -u vigild --no-pager -o cat | grep -F "$conf:\$line:" | tail -1
cp /root/vigild.conf.good $conf
systemctl reset-failed vigild
systemctl restart vigild
systemctl is-active vigild
EOF2
)
  echo "$out"
  line=$(awk '/^bad line/ {print $3}' <<<"$out")
  grep -qx 'restart failed' <<<"$out" || fail "restart with a bad config succeeded"
  grep -Eqx 'failed|activating' <<<"$out" || fail "unit not failed"
  grep -q "^$conf:$line: interval \"soon\"" <<<"$out" || grep -q "$conf:$line:.*interval" <<<"$out" \
    || fail "journal lacks the $conf:$line error"
  [ "$(tail -1 <<<"$out")" = active ] || fail "not active again with the good config"
}

# With test-stall-signal on, SIGUSR2 hangs the collection loop; systemd's
# watchdog kills the unit (result watchdog) and Restart= brings it back.
# The drop-in shortens WatchdogSec from the shipped 30s to keep the test short.
check_watchdog() {
  local out
  out=$(guest --timeout 120 <<EOF2
set -e
mkdir -p /etc/systemd/system/vigild.service.d
printf '[Service]\nWatchdogSec=5s\n' > /etc/systemd/system/vigild.service.d/watchdog-test.conf
echo 'test-stall-signal = true' >> $conf
systemctl daemon-reload
systemctl restart vigild
old=\$(systemctl show -p MainPID --value vigild)
echo "old pid \$old"
since=\$(date '+%Y-%m-%d %H:%M:%S')
kill -USR2 \$old
for i in \$(seq 60); do
  new=\$(systemctl show -p MainPID --value vigild)
  if [ "\$new" != "\$old" ] && [ "\$new" != 0 ] && systemctl is-active -q vigild; then break; fi
  sleep 1
done
echo "new pid \$new after \${i}s, \$(systemctl show -p NRestarts vigild)"
journalctl -u vigild --since "\$since" --no-pager -o cat | grep -E 'Watchdog timeout|result|Scheduled restart' || true
rm /etc/systemd/system/vigild.service.d/watchdog-test.conf
cp /root/vigild.conf.good $conf
systemctl daemon-reload
systemctl restart vigild
systemctl is-active vigild
EOF2
)
  echo "$out"
  grep -q 'Watchdog timeout' <<<"$out" || fail "no watchdog timeout in the journal"
  grep -q "Failed with result 'watchdog'" <<<"$out" || fail "result is not watchdog"
  local old new
  old=$(awk '/^old pid/ {print $3}' <<<"$out"); new=$(awk '/^new pid/ {print $3}' <<<"$out")
  [ -n "$new" ] && [ "$new" != "$old" ] && [ "$new" != 0 ] || fail "not restarted"
  [ "$(tail -1 <<<"$out")" = active ] || fail "not active afterwards"
}

# systemctl stop detaches everything: no vigil_ program, no more programs
# or links than before vigild first started.
check_stop() {
  local out
  out=$(guest <<'EOF2'
systemctl stop vigild
systemctl is-active vigild || true
echo "progs before $(cat /root/progs.before) after $(bpftool prog show | grep -c '^[0-9]*:')"
echo "links before $(cat /root/links.before) after $(bpftool link show | grep -c '^[0-9]*:')"
echo "vigil programs: $(bpftool prog show | grep -c 'name vigil_')"
EOF2
)
  echo "$out"
  grep -qx inactive <<<"$out" || fail "not inactive after stop"
  grep -qx 'vigil programs: 0' <<<"$out" || fail "vigil programs left behind"
  awk '/^(progs|links) before/ { if ($5 > $3) exit 1 }' <<<"$out" || fail "more programs or links than before"
}

# Capabilities still being merged (hot functions, spin alerts): each check
# runs once this tree's CLI has the command, and skips with the reason until
# then. The guest spins in a copy of bash named vigil_spin, so its comm is
# distinctive.
has_cmd() { "$build/vigil" "$1" --help >/dev/null 2>&1; }
start_spin() {
  guest <<'EOF2'
cp /bin/bash /tmp/vigil_spin
setsid timeout 20 /tmp/vigil_spin -c 'while :; do :; done' >/dev/null 2>&1 </dev/null &
EOF2
}
check_hot() {
  has_cmd hot || { echo "vigil has no 'hot' command in this tree"; exit 77; }
  # Debian's kernels default to kernel.perf_event_paranoid=3, which refuses
  # perf_event_open to the hardened unit (found by this test: the profiler
  # showed "off: ... Permission denied"). An admin lowers it to 2, as the
  # README says; so does this check, then restarts the agent.
  guest <<<"sysctl -q -w kernel.perf_event_paranoid=2 && systemctl restart vigild && systemctl is-active vigild"
  start_spin
  # The guest's bash is stripped: its frames may be module+0xOFFSET, but the
  # spinning process must be there, with samples.
  seen() { vigil_cli hot --since 1m --comm '^vigil_spin$' --json | grep -q '"self_samples"'; }
  retry 20 seen || fail "vigil hot does not show the spinning vigil_spin"
}
check_alerts() {
  has_cmd alerts || { echo "vigil has no 'alerts' command in this tree"; exit 77; }
  # A short minimum and a threshold a TCG guest can reach; restored after.
  guest <<<"printf 'spin-min-duration = 3s\nspin-cpu-threshold = 0.5\n' >> $conf && systemctl restart vigild && systemctl is-active vigild"
  start_spin
  seen() { vigil_cli alerts --json | grep -q '"comm": "vigil_spin"'; }
  local rc=0
  retry 30 seen || rc=1
  guest <<<"cp /root/vigild.conf.good $conf && systemctl restart vigild && systemctl is-active vigild"
  [ $rc = 0 ] || fail "vigil alerts has no spin alert for vigil_spin"
}

# The kernel matrix: the host's BPF tests (build/tests/bpf_tests, the same
# binary) run in the 6.1 guest, with vigild stopped. The build and source
# trees are mounted at the host's paths (9p, read-only), since the tests
# find the workload and vigild by their build paths. On 6.1 udpdrops takes
# the kfree_skb-without-rx_sk path joined with udp_fail_queue_rcv_skb; the
# host (6.18) takes the rx_sk path: between them both paths run.
# Known to fail on 6.1, each with why; delete an entry once it is fixed.
# - Rcvbuf...Owner (its ipv6 half): on 6.1 IPv6 rcvbuf drops carry no socket
#   (sk_ino, rcvbuf, queued 0, no owner) while IPv4 ones do: 6.1's
#   __udpv6_queue_rcv_skb does not fire udp_fail_queue_rcv_skb (a 2023
#   patch added it for IPv6). The test should expect that on such kernels.
bpf_known_6_1=UdpDropsBpfTest.RcvbufDropsMatchSnmpAndAreAttributedToTheOwner
check_bpf_tests() {
  local out rc=0
  out=$(guest --timeout 600 <<EOF2
set -e
for m in "src $src" "build $build"; do
  set -- \$m
  mkdir -p "\$2"
  mountpoint -q "\$2" || mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=262144 "\$1" "\$2"
done
systemctl is-active -q vigild && { echo "vigild still running"; exit 1; }
uname -r
cd /tmp
rc=0
"$build/tests/bpf_tests" --gtest_filter="-$bpf_known_6_1" > /tmp/bpf_tests.log 2>&1 || rc=\$?
# Every result, and each failure's expected/actual lines.
grep -E '^\[ +(OK|FAILED|SKIPPED|PASSED) +\]' /tmp/bpf_tests.log || true
grep -A5 ': Failure' /tmp/bpf_tests.log || true
echo "--- known failures on 6.1, run for the record (they do not fail this check):"
"$build/tests/bpf_tests" --gtest_filter="$bpf_known_6_1" 2>&1 | grep -E '^\[ +(OK|FAILED) +\] [A-Za-z]+\.[A-Za-z]+ \(' || true
exit \$rc
EOF2
) || rc=$?
  echo "$out"
  [ "$rc" -eq 0 ] || fail "bpf_tests failed in the 6.1 guest (exit $rc)"
  grep -q 'SKIPPED' <<<"$out" && fail "bpf_tests skipped in the guest: it must run there" || true
}

run_checks() {
  check install check_install
  [ "${#failed[@]}" -eq 0 ] || return 0   # nothing else can pass
  check active check_active
  check syscalls-mtls check_syscalls
  check drops-mtls check_drops
  check probing-6.1 check_probing
  check hardening-keeps-capabilities check_status_running
  check capability-bounding-set check_caps
  check hot check_hot
  check alerts check_alerts
  check config-restart check_config_restart
  check bad-config check_bad_config
  check watchdog check_watchdog
  check stop-detaches check_stop
  check bpf-tests-kernel-6.1 check_bpf_tests
}
