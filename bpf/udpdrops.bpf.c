// SPDX-License-Identifier: GPL-2.0
/* Every UDP packet the kernel drops, counted per (netns, local addr, local
 * port, drop reason).
 *
 * tp_btf/kfree_skb fires for every freed-not-consumed skb on the host; the
 * program keeps only IPv4/IPv6 packets whose IP protocol is UDP, reading the
 * headers from skb->head at the network header (skb->data may already point
 * past them). IPv6 extension headers are not walked: a UDP packet behind one
 * is not seen.
 *
 * The kernel's tracepoint changed shape twice, so there are three variants of
 * the program and the agent autoloads the one the running kernel's BTF
 * matches:
 *   (skb, location, reason, rx_sk)  6.11+ ("net: add rx_sk to
 *                                   trace_kfree_skb"): the socket the packet
 *                                   was dropped at, if any
 *   (skb, location, reason)         5.17+ ("net: skb: introduce
 *                                   kfree_skb_reason()")
 *   (skb, location)                 older: every drop's reason is unknown
 * Without rx_sk, tp_btf/udp_fail_queue_rcv_skb (args (rc, sk), later
 * (rc, sk, skb)) records the socket of each failed enqueue per (netns, port)
 * in sock_info, which the agent joins to the buffer-full rows. It fires
 * after kfree_skb on some kernels and before it on others, so it is a side
 * table rather than a hand-off to the next kfree_skb.
 *
 * The stats hash is double-buffered through a one-slot ARRAY_OF_MAPS, as in
 * syscalls.bpf.c: the agent's update of the slot waits for an RCU grace
 * period, so no program still holds the retired hash when it is drained, and
 * no drop is lost or counted twice between intervals. Unlike syscalls, many
 * CPUs can hit one key at once (a flood to one port), so counts are atomic.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "common.bpf.h"
#include <bpf/bpf_endian.h>
#include "udpdrops.h"

char LICENSE[] SEC("license") = "GPL";

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IPPROTO_UDP_NR 17
#define IP_OFFSET_MASK 0x1FFF

VIGIL_DOUBLE_BUFFERED_STATS(struct udpdrop_key, struct udpdrop_stats);
VIGIL_LOSS_COUNTERS(UDPDROP_CTR_MAX)

/* Last socket per (netns, port, family) that failed to queue a packet; only
 * loaded without rx_sk. LRU: bounded, the oldest socket goes first. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1);
	__type(key, struct udpdrop_sock_key);
	__type(value, struct udpdrop_sock_info);
} sock_info SEC(".maps");

/* Set by the agent before load from the kernel's BTF (enum skb_drop_reason):
 * reasons that mean "not a drop". UDPDROP_REASON_UNKNOWN when absent. */
const volatile __u32 reason_not_dropped = UDPDROP_REASON_UNKNOWN;
const volatile __u32 reason_consumed = UDPDROP_REASON_UNKNOWN;

static const struct udpdrop_stats zero_stats;

static __always_inline __u32 netns_of(struct sk_buff *skb, struct sock *sk)
{
	struct net_device *dev;

	if (sk)
		return BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	dev = BPF_CORE_READ(skb, dev);
	if (dev)
		return BPF_CORE_READ(dev, nd_net.net, ns.inum);
	return 0;
}

static __always_inline __u64 sock_ino(struct sock *sk)
{
	struct socket *sock = BPF_CORE_READ(sk, sk_socket);

	if (!sock)
		return 0;
	/* SOCK_INODE(): the inode follows the socket in struct socket_alloc. */
	return BPF_CORE_READ((struct socket_alloc *)sock, vfs_inode.i_ino);
}

static __always_inline int record(struct sk_buff *skb, __u32 reason,
				  struct sock *rx_sk)
{
	struct udpdrop_key key = {};
	struct udpdrop_stats *v;
	struct sock *sk = rx_sk;
	__u16 nh, proto, sport = 0, dport = 0;
	__u8 raddr[16] = {};
	unsigned char *head;
	struct udphdr uh;
	bool rx, have_ports = true;
	__u32 slot = 0;
	void *stats;

	if (reason != UDPDROP_REASON_UNKNOWN &&
	    (reason == reason_not_dropped || reason == reason_consumed))
		return 0;
	proto = BPF_CORE_READ(skb, protocol);
	if (proto != bpf_htons(ETH_P_IP) && proto != bpf_htons(ETH_P_IPV6))
		return 0;
	nh = BPF_CORE_READ(skb, network_header);
	if (nh == (__u16)~0U)
		return 0; /* network header never set: not an IP packet yet */
	head = BPF_CORE_READ(skb, head);

	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr iph;

		if (bpf_probe_read_kernel(&iph, sizeof(iph), head + nh))
			return 0;
		if (iph.protocol != IPPROTO_UDP_NR || iph.version != 4)
			return 0;
		key.family = UDPDROP_AF_INET;
		/* A non-first fragment carries no UDP header. */
		if (bpf_ntohs(iph.frag_off) & IP_OFFSET_MASK)
			have_ports = false;
		else if (bpf_probe_read_kernel(&uh, sizeof(uh),
					       head + nh + iph.ihl * 4)) {
			count(UDPDROP_CTR_BAD_HEADER);
			return 0;
		}
		/* A packet received here has its local end at the destination. */
		rx = BPF_CORE_READ(skb, skb_iif) != 0;
		__builtin_memcpy(key.addr, rx ? &iph.daddr : &iph.saddr, 4);
		__builtin_memcpy(raddr, rx ? &iph.saddr : &iph.daddr, 4);
	} else {
		struct ipv6hdr ip6h;

		if (bpf_probe_read_kernel(&ip6h, sizeof(ip6h), head + nh))
			return 0;
		if (ip6h.nexthdr != IPPROTO_UDP_NR)
			return 0;
		key.family = UDPDROP_AF_INET6;
		if (bpf_probe_read_kernel(&uh, sizeof(uh),
					  head + nh + sizeof(ip6h))) {
			count(UDPDROP_CTR_BAD_HEADER);
			return 0;
		}
		rx = BPF_CORE_READ(skb, skb_iif) != 0;
		__builtin_memcpy(key.addr, rx ? &ip6h.daddr : &ip6h.saddr, 16);
		__builtin_memcpy(raddr, rx ? &ip6h.saddr : &ip6h.daddr, 16);
	}
	if (have_ports) {
		sport = bpf_ntohs(uh.source);
		dport = bpf_ntohs(uh.dest);
	}
	key.port = rx ? dport : sport;
	key.reason = reason;
	/* Outgoing packets still belong to their sending socket. */
	if (!sk && !rx)
		sk = BPF_CORE_READ(skb, sk);
	key.netns = netns_of(skb, sk);

	stats = bpf_map_lookup_elem(&active_stats, &slot);
	if (!stats)
		return 0;
	v = bpf_map_lookup_elem(stats, &key);
	if (!v) {
		/* EEXIST just means another CPU created it first. */
		bpf_map_update_elem(stats, &key, &zero_stats, BPF_NOEXIST);
		v = bpf_map_lookup_elem(stats, &key);
		if (!v) {
			count(UDPDROP_CTR_MAP_FULL);
			return 0;
		}
	}
	__sync_fetch_and_add(&v->count, 1);
	/* "Last" fields: racing CPUs may interleave them; each is a value
	 * some drop had, which is all they promise. */
	__builtin_memcpy(v->remote_addr, raddr, 16);
	v->remote_port = rx ? sport : dport;
	if (rx_sk) {
		v->rcvbuf = BPF_CORE_READ(rx_sk, sk_rcvbuf);
		v->queued = BPF_CORE_READ(rx_sk, sk_backlog.rmem_alloc.counter);
		v->sk_ino = sock_ino(rx_sk);
	}
	return 0;
}

SEC("tp_btf/kfree_skb")
int BPF_PROG(vigil_kfree_skb_sk, struct sk_buff *skb, void *location,
	     enum skb_drop_reason reason, struct sock *rx_sk)
{
	return record(skb, reason, rx_sk);
}

SEC("tp_btf/kfree_skb")
int BPF_PROG(vigil_kfree_skb_reason, struct sk_buff *skb, void *location,
	     enum skb_drop_reason reason)
{
	return record(skb, reason, NULL);
}

SEC("tp_btf/udp_fail_queue_rcv_skb")
int BPF_PROG(vigil_udp_fail_queue, int rc, struct sock *sk)
{
	struct udpdrop_sock_key key = {};
	struct udpdrop_sock_info info = {};

	if (!sk)
		return 0;
	key.netns = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	key.port = BPF_CORE_READ(sk, __sk_common.skc_num);
	key.family = BPF_CORE_READ(sk, __sk_common.skc_family);
	info.rcvbuf = BPF_CORE_READ(sk, sk_rcvbuf);
	info.queued = BPF_CORE_READ(sk, sk_backlog.rmem_alloc.counter);
	info.sk_ino = sock_ino(sk);
	bpf_map_update_elem(&sock_info, &key, &info, BPF_ANY);
	return 0;
}

SEC("tp_btf/kfree_skb")
int BPF_PROG(vigil_kfree_skb_noreason, struct sk_buff *skb, void *location)
{
	return record(skb, UDPDROP_REASON_UNKNOWN, NULL);
}
