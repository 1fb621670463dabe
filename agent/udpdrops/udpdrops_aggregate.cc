#include "agent/udpdrops/udpdrops_aggregate.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/duration.h"

namespace vigil {

absl::StatusOr<DropsQuery> ValidateDropsRequest(const v1::DropsRequest& req,
                                                const DropReasonTable& reasons) {
  DropsQuery q;
  if (req.port() > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("port ", req.port(), ": expected 1-65535"));
  }
  q.port = req.port();
  if (!req.reason().empty()) {
    q.reason = reasons.Value(req.reason());
    if (!q.reason) {
      return absl::InvalidArgumentError(
          // The client's text, quoted escaped and cut: one short line.
          absl::StrCat("reason ", QuoteValue(req.reason()), ": not a drop reason of this kernel",
                       reasons.empty() ? " (it reports none; only \"unknown\")"
                                       : " (e.g. SOCKET_RCVBUFF, NO_SOCKET, UDP_CSUM)"));
    }
  }
  if (req.top() > kMaxDropsTop) {
    return absl::InvalidArgumentError(
        absl::StrCat("top ", req.top(), ": maximum is ", kMaxDropsTop));
  }
  if (req.top() > 0) q.top = req.top();
  if (req.range().since_ago_ns() < 0 || req.range().until_ago_ns() < 0) {
    return absl::InvalidArgumentError("range: durations must not be negative");
  }
  if (req.range().since_ago_ns() != 0 && req.range().until_ago_ns() >= req.range().since_ago_ns()) {
    return absl::InvalidArgumentError("range: until must be more recent than since");
  }
  return q;
}

std::string FormatIp(uint8_t family, const uint8_t addr[16]) {
  char buf[INET6_ADDRSTRLEN] = {};
  const int af = family == UDPDROP_AF_INET6 ? AF_INET6 : AF_INET;
  if (inet_ntop(af, addr, buf, sizeof(buf)) == nullptr) return "?";
  return buf;
}

std::string ExplainDrop(absl::string_view reason) {
  struct Advice {
    const char* reason;
    const char* text;
  };
  static constexpr Advice kAdvice[] = {
      {"SOCKET_RCVBUFF",
       "The socket's receive buffer was full: read faster (more readers, recvmmsg) or raise "
       "SO_RCVBUF, which is capped by net.core.rmem_max."},
      {"NO_SOCKET",
       "Nothing was bound to this port in this network namespace: start the receiver, or fix the "
       "sender's destination address or port."},
      {"UDP_CSUM",
       "The UDP checksum was wrong: the packet was corrupted on the way or by the sender (check "
       "its NIC checksum offload and any middlebox rewriting the payload)."},
      {"PROTO_MEM",
       "UDP's host-wide memory limit was reached: raise net.ipv4.udp_mem or find the sockets "
       "holding many queued bytes (ss -uamp)."},
      {"SOCKET_FILTER",
       "A socket filter attached by the application (SO_ATTACH_FILTER/BPF) discarded it, as that "
       "filter intends."},
      {"PKT_TOO_SMALL",
       "The packet was shorter than its headers claim (truncated): check the sender or whatever "
       "copies or replays the traffic."},
      {"NETFILTER_DROP",
       "A firewall rule dropped it: check nft list ruleset / iptables for this port."},
      {"CPU_BACKLOG",
       "The per-CPU receive backlog was full: raise net.core.netdev_max_backlog or spread the "
       "load across CPUs (RPS/RSS)."},
      {"IP_RPFILTER",
       "Reverse-path filtering rejected the source address: check net.ipv4.conf.*.rp_filter and "
       "the routes back to the sender."},
      {"XFRM_POLICY", "An IPsec policy rejected it: check ip xfrm policy for this traffic."},
      {"OTHERHOST",
       "It was addressed to another host's MAC address, which is normal on a shared or "
       "promiscuous link."},
      {"IP_CSUM", "The IP header checksum was wrong: the packet was corrupted on the way."},
      {"IP_INHDR", "The IP header was malformed: check the sender."},
      {"QDISC_DROP",
       "A queueing discipline dropped it on the way out: the sender outpaces the link or its "
       "qdisc limit (tc -s qdisc)."},
      {"FULL_RING", "The device's ring was full: raise it with ethtool -G or read faster."},
      {"unknown",
       "This kernel reports no drop reasons (before 5.17): compare with nstat -az 'Udp*' to tell "
       "buffer overflows from closed ports."},
  };
  for (const Advice& a : kAdvice) {
    if (reason == a.reason) return a.text;
  }
  if (absl::StartsWith(reason, "NEIGH_")) {
    return "Neighbour (ARP/NDP) resolution failed or its queue was full: check that the next hop "
           "answers.";
  }
  if (absl::StartsWith(reason, "IP_OUTNOROUTES") || absl::StartsWith(reason, "IP_INNOROUTES")) {
    return "There was no route for it: check ip route for the destination.";
  }
  return absl::StrCat("The kernel dropped it for ", reason,
                      "; see enum skb_drop_reason in this kernel's include/net/dropreason-core.h.");
}

bool DropsMerger::Key::operator==(const Key& o) const {
  return k.netns == o.k.netns && k.reason == o.k.reason && k.port == o.k.port &&
         k.family == o.k.family && memcmp(k.addr, o.k.addr, sizeof(k.addr)) == 0;
}

void DropsMerger::Add(const UdpDropInterval& interval, absl::Time interval_end) {
  loss_ += interval.loss;
  for (const UdpDropRecord& r : interval.records) {
    if (query_.port != 0 && r.key.port != query_.port) continue;
    if (query_.reason && r.key.reason != *query_.reason) continue;
    Key key{r.key};
    key.k.pad = 0;
    Agg& a = merged_[key];
    a.count += r.stats.count;
    // Intervals arrive oldest first: the newest interval's last drop wins.
    if (interval_end >= a.last_seen) {
      a.last_seen = interval_end;
      a.last = r.stats;
      if (!r.owners.empty() || r.stats.sk_ino != 0) a.owners = r.owners;
    }
  }
}

void DropsMerger::Finish(double seconds, v1::DropsResponse* out) const {
  std::vector<std::pair<const Key*, const Agg*>> rows;
  rows.reserve(merged_.size());
  uint64_t total = 0;
  for (const auto& [k, a] : merged_) {
    rows.push_back({&k, &a});
    total += a.count;
  }
  // Compare, never subtract: counts are u64.
  std::sort(rows.begin(), rows.end(), [](const auto& x, const auto& y) {
    if (x.second->count != y.second->count) return x.second->count > y.second->count;
    const udpdrop_key& a = x.first->k;
    const udpdrop_key& b = y.first->k;
    if (a.netns != b.netns) return a.netns < b.netns;
    if (a.port != b.port) return a.port < b.port;
    if (a.reason != b.reason) return a.reason < b.reason;
    if (a.family != b.family) return a.family < b.family;
    return memcmp(a.addr, b.addr, sizeof(a.addr)) < 0;
  });
  const size_t shown = std::min<size_t>(rows.size(), query_.top);
  for (size_t i = 0; i < shown; ++i) {
    const udpdrop_key& k = rows[i].first->k;
    const Agg& a = *rows[i].second;
    v1::UdpDrop* d = out->add_drops();
    d->set_reason(reasons_.Name(k.reason));
    d->set_family(k.family == UDPDROP_AF_INET6 ? "ipv6" : "ipv4");
    d->set_local_addr(FormatIp(k.family, k.addr));
    d->set_local_port(k.port);
    d->set_netns(k.netns);
    d->set_count(a.count);
    d->set_rate_per_s(seconds > 0 ? a.count / seconds : 0.0);
    d->set_rcvbuf(a.last.rcvbuf);
    d->set_queued(a.last.queued);
    d->set_last_remote_addr(FormatIp(k.family, a.last.remote_addr));
    d->set_last_remote_port(a.last.remote_port);
    d->set_socket_inode(a.last.sk_ino);
    for (const SocketOwnerInfo& o : a.owners) {
      v1::SocketOwner* so = d->add_owners();
      so->set_pid(o.pid);
      so->set_comm(o.comm);
    }
    if (!a.owners.empty()) {
      d->set_pid(a.owners.front().pid);
      d->set_comm(a.owners.front().comm);
    }
    d->set_explain(ExplainDrop(d->reason()));
    d->set_last_seen_unix_ns(absl::ToUnixNanos(a.last_seen));
  }
  out->set_rows_omitted(static_cast<uint32_t>(rows.size() - shown));
  out->set_total(total);
  out->mutable_loss()->set_map_full(loss_.map_full);
  out->mutable_loss()->set_bad_header(loss_.bad_header);
  out->mutable_loss()->set_owner_cache_full(loss_.owner_cache_full);
}

}  // namespace vigil
