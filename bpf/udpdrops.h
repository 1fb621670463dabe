/* Shared between bpf/udpdrops.bpf.c and agent/udpdrops: plain C, fixed-width,
 * no pointers. */
#ifndef VIGIL_BPF_UDPDROPS_H
#define VIGIL_BPF_UDPDROPS_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Reason recorded when the kernel's kfree_skb carries no reason (< 5.17). */
#define UDPDROP_REASON_UNKNOWN 0xFFFFFFFFu

/* Address families as stored in keys (AF_INET, AF_INET6 values). */
#define UDPDROP_AF_INET 2
#define UDPDROP_AF_INET6 10

/* One aggregate: drops of UDP packets whose local end is (netns, addr, port),
 * for one reason. "Local" is the destination of a received packet and the
 * source of a packet being sent. Addresses are in network byte order; IPv4
 * uses the first 4 bytes of addr. */
struct udpdrop_key {
	__u32 netns; /* network namespace inode; 0 if not known at the drop */
	__u32 reason; /* enum skb_drop_reason value, or UDPDROP_REASON_UNKNOWN */
	__u16 port; /* local port, host byte order */
	__u8 family; /* UDPDROP_AF_INET or UDPDROP_AF_INET6 */
	__u8 pad;
	__u8 addr[16];
};

struct udpdrop_stats {
	__u64 count;
	/* Socket the packet was dropped at (0: none, e.g. no socket bound).
	 * The rest are as of the last drop counted into this entry. */
	__u64 sk_ino;
	__u32 rcvbuf; /* sk_rcvbuf, bytes; 0 without a socket */
	__u32 queued; /* sk_rmem_alloc, bytes; 0 without a socket */
	__u8 remote_addr[16];
	__u16 remote_port; /* host byte order */
	__u16 pad[3];
};

/* Kernels without rx_sk (before 6.11): the socket of the last failed
 * enqueue per (netns, local port, family), from udp_fail_queue_rcv_skb. The
 * agent joins it to SOCKET_RCVBUFF/PROTO_MEM rows with the same netns, port
 * and family. */
struct udpdrop_sock_key {
	__u32 netns;
	__u16 port; /* local port, host byte order */
	__u16 family; /* UDPDROP_AF_INET or UDPDROP_AF_INET6 */
};

struct udpdrop_sock_info {
	__u64 sk_ino;
	__u32 rcvbuf;
	__u32 queued;
};

/* Indexes into the per-CPU `counters` array: what could not be recorded. */
enum udpdrop_counter {
	UDPDROP_CTR_MAP_FULL = 0, /* stats map full: the drop was not counted */
	UDPDROP_CTR_BAD_HEADER, /* UDP drop whose headers could not be read */
	UDPDROP_CTR_MAX,
};

#endif /* VIGIL_BPF_UDPDROPS_H */
