/* SPDX-License-Identifier: GPL-2.0 */
/* What dropwatch's BPF program and its loader (native/bpf.cc) share: map keys, values and the packet record. */
#ifndef DROPWATCH_BPF_H
#define DROPWATCH_BPF_H

#define DW_MODE_SUMMARY 0
#define DW_MODE_PACKET 1

#define DW_MAX_KEYS 16384
#define DW_MAX_CAPTURE 256
#define DW_RING_BYTES (16 * 1024 * 1024)
#define DW_IFNAMSIZ 16
#define DW_COMM_LEN 16

#define DW_LOST_TABLE_FULL 0
#define DW_LOST_RING_FULL 1
#define DW_LOST_KINDS 2

/* 24 bytes, no implicit padding. */
struct dw_count_key {
	__u64 location;
	__u32 reason;
	__u32 netns;
	__u32 ifindex;
	__u16 protocol;
	__u16 pad;
};

struct dw_count_value {
	__u64 count;
	char ifname[DW_IFNAMSIZ];
};

/* One dropped packet; `data` holds cap_len bytes from the MAC header (from_mac) or the network header. */
struct dw_packet {
	__u64 time_ns;
	__u64 location;
	__u32 reason;
	__u32 netns;
	__u32 ifindex;
	__u32 orig_len;
	__u32 cap_len;
	__u32 pid;
	__u16 protocol;
	__u8 from_mac;
	__u8 pad[5];
	char comm[DW_COMM_LEN];
	char ifname[DW_IFNAMSIZ];
	unsigned char data[DW_MAX_CAPTURE];
};

#endif
