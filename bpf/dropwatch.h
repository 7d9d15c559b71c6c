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
/* In the same per-CPU array as the losses: drops the kernel filter kept from user space. */
#define DW_FILTERED DW_LOST_KINDS
#define DW_TALLIES (DW_LOST_KINDS + 1)

/*
 * The kernel filter: a conjunction of one test per field, each "the drop's value is in this set" (allow) or "is not"
 * (deny). The sets live in `filter_values` under the generation the word names, so user space fills the idle
 * generation and then switches with one store of `filter_word`: each drop is tested against one filter, whole.
 */
#define DW_FIELD_PROTOCOL 0
#define DW_FIELD_REASON 1
#define DW_FIELD_NETNS 2
#define DW_FIELD_IFINDEX 3
#define DW_FIELD_IFNAME 4 /* by the device's name (its `name` in the key, `value` 0): a name, unlike an ifindex, is
			     the same device to a user in every namespace */
#define DW_FIELDS 5
#define DW_FILTER_ON (1U << 0)      /* a filter is set: test the fields below */
#define DW_FILTER_NONE (1U << 1)    /* nothing passes */
#define DW_FILTER_GEN (1U << 2)     /* the generation of filter_values in force */
#define DW_FILTER_TESTS(f) (1U << (8 + 2 * (f)))  /* field f is tested */
#define DW_FILTER_ALLOWS(f) (1U << (9 + 2 * (f))) /* field f's set lists what passes (else what does not) */
#define DW_FILTER_VALUES 8192                      /* both generations together */

/* 24 bytes. A numeric field's key has an all-zero name; DW_FIELD_IFNAME's a value of 0 and the NUL-padded name. */
struct dw_filter_key {
	__u32 field; /* DW_FIELD_* | generation << 8 */
	__u32 value;
	char name[DW_IFNAMSIZ];
};

/*
 * 40 bytes, no implicit padding. pid and cgroup: the task's tgid and its cgroup v2 id (the inode of its directory in
 * the unified hierarchy) when the drop happened in task context, else 0.
 */
struct dw_count_key {
	__u64 location;
	__u32 reason;
	__u32 netns;
	__u32 ifindex;
	__u16 protocol;
	__u16 pad;
	__u32 pid;
	__u32 pad2;
	__u64 cgroup;
};

struct dw_count_value {
	__u64 count;
	char ifname[DW_IFNAMSIZ];
	char comm[DW_COMM_LEN];
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
	__u64 cgroup;
	unsigned char data[DW_MAX_CAPTURE];
};


/*
 * Call chains (--stack): the program unwinds the kernel stack of a sample of the drops the filter keeps, at most
 * `limit` a second (user space refills it) and one drop in `stride` per CPU, so the cost stays bounded under a flood;
 * every drop is still counted. Each sample adds one to its (location, reason, stack id) in `stack_samples`; packet
 * mode also notes the stack id of the packet record it belongs to in `packet_stacks`.
 */
#define DW_STACK_DEPTH 64    /* frames kept of a chain, innermost first */
#define DW_STACK_IDS 2048    /* distinct chains the stack map holds between two drains */
#define DW_STACK_SAMPLES 4096 /* (location, reason, chain) tallies between two drains */
#define DW_STACK_NONE (-1)   /* a sampled drop whose stack could not be taken */

struct dw_stack_budget {
	__u32 stride; /* take one drop in `stride` on each CPU; 0: chains off */
	__u32 limit;  /* chains a second at most */
	__u32 taken;  /* chains taken in this second: user space sets it back to 0 each second */
	__u32 pad;
};

/* 16 bytes, no implicit padding. */
struct dw_stack_key {
	__u64 location;
	__u32 reason;
	__s32 stackid; /* in `stacks`, or DW_STACK_NONE */
};

/* A packet record's identity: its time and location (struct dw_packet's time_ns and location). */
struct dw_packet_stack_key {
	__u64 time_ns;
	__u64 location;
};

/*
 * Hardware drops (devlink:devlink_trap_report): counted per (trap, group, input port) in `trap_counts`, whose counts
 * only grow (user space reports the difference from what it read before), or, in packet mode, copied into their own
 * ring, `trap_packets`, so a flood of software drops cannot crowd them out.
 */
#define DW_TRAP_NAMSIZ 64
#define DW_MAX_TRAP_KEYS 1024
#define DW_TRAP_RING_BYTES (1024 * 1024)
#define DW_TRAP_LOST_TABLE_FULL 0
#define DW_TRAP_LOST_RING_FULL 1
#define DW_TRAP_LOST_KINDS 2
/* The reason the kernel filter tests for a hardware drop, which has none: in no set, as NET_DM's null reason. */
#define DW_TRAP_NO_REASON 0xffffffffU

/* 136 bytes, no implicit padding. ifindex and netns: the input port's, 0 when the driver named none. */
struct dw_trap_key {
	char trap[DW_TRAP_NAMSIZ];
	char group[DW_TRAP_NAMSIZ];
	__u32 ifindex;
	__u32 netns;
};

struct dw_trap_value {
	__u64 count;
	char ifname[DW_IFNAMSIZ];
};

/* One trapped packet; `data` holds cap_len bytes from skb->data, where drivers report from the MAC header. */
struct dw_trap_packet {
	__u64 time_ns;
	__u32 ifindex;
	__u32 netns;
	__u32 orig_len;
	__u32 cap_len;
	__u16 protocol;
	__u8 pad[6];
	char trap[DW_TRAP_NAMSIZ];
	char group[DW_TRAP_NAMSIZ];
	char ifname[DW_IFNAMSIZ];
	unsigned char data[DW_MAX_CAPTURE];
};

#endif
