#include "agent/udpdrops/udpdrops_collector.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "bpf/udpdrops.skel.h"

namespace vigil {

absl::StatusOr<std::unique_ptr<UdpDropsCollector>> UdpDropsCollector::Create(
    const UdpDropsConfig& config) {
  if (config.max_entries == 0 || config.batch_size == 0 || config.owner_cache_entries == 0) {
    return absl::InvalidArgumentError(
        "udpdrops: max_entries, batch_size and owner_cache_entries must be > 0");
  }
  absl::StatusOr<BtfPtr> vmlinux = LoadVmlinuxBtf();
  if (!vmlinux.ok()) return vmlinux.status();
  absl::StatusOr<int> nargs = TracepointArgCount(vmlinux->get(), "kfree_skb");
  if (!nargs.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("udpdrops: no kfree_skb tracepoint: ", nargs.status().message()));
  }
  if (config.force_kfree_skb_args != 0) {
    if (config.force_kfree_skb_args < 2 || config.force_kfree_skb_args > *nargs) {
      return absl::InvalidArgumentError("udpdrops: force_kfree_skb_args must be 2..the kernel's");
    }
    nargs = config.force_kfree_skb_args;
  }
  const bool fail_queue_tp = TracepointArgCount(vmlinux->get(), "udp_fail_queue_rcv_skb").ok();
  std::vector<std::string> missing;
  DropReasonTable reasons;
  if (*nargs >= 3) {
    absl::StatusOr<DropReasonTable> t = DropReasonTable::FromBtf(vmlinux->get());
    if (t.ok()) {
      reasons = *std::move(t);
    } else {
      missing.push_back(absl::StrCat("reason names (", t.status().message(), ")"));
    }
  } else {
    missing.push_back("drop reasons (kfree_skb has none before 5.17: every reason is unknown)");
  }
  const bool join = *nargs < 4 && fail_queue_tp;
  if (*nargs < 4 && !fail_queue_tp) {
    missing.push_back(
        "the socket at the drop (no kfree_skb rx_sk before 6.11, no "
        "udp_fail_queue_rcv_skb tracepoint): rcvbuf, queued and owner are not "
        "recorded");
  }

  // This load's libbpf warnings, for its error messages.
  LibbpfLogCapture libbpf_log;
  SkelPtr<udpdrops_bpf> skel(udpdrops_bpf::open());
  if (!skel) return ErrnoStatus(errno, "opening udpdrops.bpf.o");
  // One variant of the program per tracepoint shape; load only the one this
  // kernel has (a variant reading an argument the kernel lacks would fail
  // verification and take the others down with it).
  bpf_program__set_autoload(skel->progs.vigil_kfree_skb_sk, *nargs >= 4);
  bpf_program__set_autoload(skel->progs.vigil_kfree_skb_reason, *nargs == 3);
  bpf_program__set_autoload(skel->progs.vigil_kfree_skb_noreason, *nargs < 3);
  bpf_program__set_autoload(skel->progs.vigil_udp_fail_queue, join);
  if (int err = bpf_map__set_max_entries(skel->maps.sock_info, config.sock_info_entries)) {
    return ErrnoStatus(err, "sizing map sock_info");
  }
  for (bpf_map* m : {skel->maps.stats_a, skel->maps.stats_b}) {
    int err = bpf_map__set_max_entries(m, config.max_entries);
    if (err) return ErrnoStatus(err, absl::StrCat("sizing map ", bpf_map__name(m)));
  }
  if (auto v = reasons.not_dropped_yet()) skel->rodata->reason_not_dropped = *v;
  if (auto v = reasons.consumed()) skel->rodata->reason_consumed = *v;
  if (int err = udpdrops_bpf::load(skel.get())) {
    return libbpf_log.Annotate(ErrnoStatus(err, "loading udpdrops.bpf.o"));
  }
  if (int err = udpdrops_bpf::attach(skel.get())) {
    return libbpf_log.Annotate(ErrnoStatus(err, "attaching tp_btf/kfree_skb"));
  }
  std::string degraded;
  if (!missing.empty()) degraded = absl::StrCat("missing ", absl::StrJoin(missing, "; "));
  std::unique_ptr<UdpDropsCollector> c(
      new UdpDropsCollector(config, std::move(skel), std::move(reasons), std::move(degraded)));
  c->join_sock_info_ = join;
  c->reason_rcvbuff_ = c->reasons_.Value("SOCKET_RCVBUFF");
  c->reason_proto_mem_ = c->reasons_.Value("PROTO_MEM");
  return c;
}

UdpDropsCollector::UdpDropsCollector(const UdpDropsConfig& config, SkelPtr<udpdrops_bpf> skel,
                                     DropReasonTable reasons, std::string degraded)
    : config_(config),
      skel_(std::move(skel)),
      buffers_(skel_->maps.active_stats, skel_->maps.stats_a, skel_->maps.stats_b),
      reasons_(std::move(reasons)),
      degraded_(std::move(degraded)),
      owners_(
          config.owner_cache_entries, config.owner_refresh,
          [](const absl::flat_hash_set<uint64_t>& wanted) { return ScanProcForSockets(wanted); }),
      keys_(config.batch_size),
      values_(config.batch_size) {}

UdpDropsCollector::~UdpDropsCollector() = default;

absl::StatusOr<UdpDropInterval> UdpDropsCollector::Collect(absl::Time now) {
  absl::StatusOr<int> retired = buffers_.Swap("udpdrops: swapping stats buffers");
  if (!retired.ok()) return retired.status();
  UdpDropInterval out;
  const absl::Status drained =
      DrainHash(*retired, config_.max_entries, &keys_, &values_, "udpdrops: draining stats buffer",
                &out.loss.drain_failed, [&out](const udpdrop_key& k, const udpdrop_stats& v) {
                  UdpDropRecord r;
                  r.key = k;
                  r.stats = v;
                  out.records.push_back(std::move(r));
                });
  LogDrainFailure(drained, out.loss.drain_failed);
  if (absl::Status s = counters_.ReadInto(bpf_map__fd(skel_->maps.counters), &out.loss); !s.ok()) {
    return s;
  }

  if (join_sock_info_) JoinSockInfo(&out);

  absl::flat_hash_set<uint64_t> inodes;
  for (const UdpDropRecord& r : out.records) {
    if (r.stats.sk_ino != 0) inodes.insert(r.stats.sk_ino);
  }
  if (!inodes.empty()) {
    OwnerMap owners = owners_.Resolve(inodes, now);
    for (UdpDropRecord& r : out.records) {
      if (auto it = owners.find(r.stats.sk_ino); it != owners.end()) r.owners = it->second;
    }
  }
  out.loss.owner_cache_full = owners_.not_cached() - last_not_cached_;
  last_not_cached_ = owners_.not_cached();
  return out;
}

void UdpDropsCollector::JoinSockInfo(UdpDropInterval* out) {
  const int fd = bpf_map__fd(skel_->maps.sock_info);
  for (UdpDropRecord& r : out->records) {
    if (r.stats.sk_ino != 0) continue;
    const bool at_socket = (reason_rcvbuff_ && r.key.reason == *reason_rcvbuff_) ||
                           (reason_proto_mem_ && r.key.reason == *reason_proto_mem_) ||
                           r.key.reason == UDPDROP_REASON_UNKNOWN;
    if (!at_socket) continue;
    udpdrop_sock_key k = {};
    k.netns = r.key.netns;
    k.port = r.key.port;
    k.family = r.key.family;
    udpdrop_sock_info info = {};
    // Racy only in the harmless way: a newer failure may have replaced it.
    if (bpf_map_lookup_elem(fd, &k, &info) != 0) {
      // A dual-stack AF_INET6 socket also drops IPv4 packets.
      if (k.family != UDPDROP_AF_INET) continue;
      k.family = UDPDROP_AF_INET6;
      if (bpf_map_lookup_elem(fd, &k, &info) != 0) continue;
    }
    r.stats.sk_ino = info.sk_ino;
    r.stats.rcvbuf = info.rcvbuf;
    r.stats.queued = info.queued;
  }
}

std::vector<uint32_t> UdpDropsCollector::ProgramIds() const {
  // Only the variants this kernel has are loaded.
  return LoadedProgramIds({skel_->progs.vigil_kfree_skb_sk, skel_->progs.vigil_kfree_skb_reason,
                           skel_->progs.vigil_kfree_skb_noreason,
                           skel_->progs.vigil_udp_fail_queue});
}

}  // namespace vigil
