// SPDX-License-Identifier: GPL-2.0
// dropwatch's BPF program: every skb:kfree_skb the kernel filter lets through counted in the kernel per (location,
// reason, netns, device, protocol, task and its cgroup), or, in packet mode, copied with its first bytes into a ring
// buffer. CO-RE: the kernel types it reads are declared in vmlinux-min.h with only the fields used, and libbpf
// relocates them against the running kernel's BTF.
#include "vmlinux-min.h"
#include "dropwatch.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

/* What user space sets while the program is loaded (mmapped .bss). */
volatile __u32 capture_mode;  /* DW_MODE_SUMMARY or DW_MODE_PACKET */
volatile __u32 capture_len;   /* bytes of each packet to copy, at most DW_MAX_CAPTURE */
volatile __u64 wakeup_bytes;  /* packet mode: data in the ring past which the consumer is woken */
volatile __u32 filter_word;   /* DW_FILTER_*: the kernel filter in force, stored at once by user space */

/* The kernel filter's sets, both generations: a key present means the value is in that field's set. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DW_FILTER_VALUES);
	__type(key, struct dw_filter_key);
	__type(value, __u8);
} filter_values SEC(".maps");

/* One counting table; two of them alternate in `active` so user space drains the idle one. */
struct counts {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, DW_MAX_KEYS);
	__type(key, struct dw_count_key);
	__type(value, struct dw_count_value);
} counts0 SEC(".maps"), counts1 SEC(".maps");

/*
 * The index the program reads: slot 0 holds the table in use. Replacing it from user space returns only after an RCU
 * grace period, so no program still writes to the table it replaced once the syscall returns.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct counts);
} active SEC(".maps") = {
	.values = { &counts0 },
};

/* Per CPU: drops not counted or not delivered, by DW_LOST_* cause, and drops the filter kept back (DW_FILTERED). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DW_TALLIES);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, DW_RING_BYTES);
} packets SEC(".maps");

/* --- Call chains (--stack): a budgeted sample of drops unwound into `stacks` (see dropwatch.h). --- */

/* Slot 0: the stride, the limit and the chains taken this second, which user space sets back to 0 each second. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dw_stack_budget);
} stack_budget SEC(".maps");

/* Per CPU: drops still to pass over before the next one is a candidate for a chain. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} stack_skip SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, DW_STACK_IDS);
	__type(key, __u32);
	__uint(value_size, DW_STACK_DEPTH * sizeof(__u64));
} stacks SEC(".maps");

/* Summary mode: sampled drops per (location, reason, chain), taken out by user space each interval. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DW_STACK_SAMPLES);
	__type(key, struct dw_stack_key);
	__type(value, __u64);
} stack_samples SEC(".maps");

/* Packet mode: the chain of each sampled packet record, written before the record is submitted. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DW_STACK_SAMPLES);
	__type(key, struct dw_packet_stack_key);
	__type(value, __s32);
} packet_stacks SEC(".maps");

/* take_stack's answer for a drop that is not in the sample. */
#define DW_STACK_SKIPPED (-2)

/*
 * This drop's chain when it is in the sample: its id in `stacks`, DW_STACK_NONE when it could not be unwound, else
 * DW_STACK_SKIPPED. Outside the sample a drop costs a per-CPU countdown; the shared budget is read only at the end of
 * a stride and written only for a chain taken. Racing CPUs may take a few more than the budget, never a flood's worth.
 */
static __always_inline __s32 take_stack(void *ctx)
{
	__u32 zero = 0, stride, n;
	struct dw_stack_budget *budget = bpf_map_lookup_elem(&stack_budget, &zero);
	__u32 *skip;
	long id;

	if (!budget)
		return DW_STACK_SKIPPED;
	stride = budget->stride;
	if (stride == 0)
		return DW_STACK_SKIPPED;
	skip = bpf_map_lookup_elem(&stack_skip, &zero);
	if (!skip)
		return DW_STACK_SKIPPED;
	n = *skip;
	if (n > stride)
		n = stride;
	if (n > 1) {
		*skip = n - 1;
		return DW_STACK_SKIPPED;
	}
	*skip = stride;
	if (budget->taken >= budget->limit)
		return DW_STACK_SKIPPED;
	__sync_fetch_and_add(&budget->taken, 1);
	id = bpf_get_stackid(ctx, &stacks, 0);
	return id < 0 ? DW_STACK_NONE : (__s32)id;
}

/* Summary mode: one more sampled drop at the key's location and reason that took chain `id`. */
static __always_inline void tally_stack(const struct dw_count_key *key, __s32 id)
{
	struct dw_stack_key k = { .location = key->location, .reason = key->reason, .stackid = id };
	__u64 one = 1, *n = bpf_map_lookup_elem(&stack_samples, &k);

	if (!n && bpf_map_update_elem(&stack_samples, &k, &one, BPF_NOEXIST) == 0)
		return;
	if (!n)
		n = bpf_map_lookup_elem(&stack_samples, &k);
	if (n)
		__sync_fetch_and_add(n, 1);
}

/* Packet mode: the chain of a reserved record, noted before the record is submitted so user space finds both. */
static __always_inline void note_packet_stack(const struct dw_packet *rec, __s32 id)
{
	struct dw_packet_stack_key k = { .time_ns = rec->time_ns, .location = rec->location };

	if (id != DW_STACK_SKIPPED)
		bpf_map_update_elem(&packet_stacks, &k, &id, BPF_ANY);
}

static __always_inline void count_lost(__u32 kind)
{
	__u64 *n = bpf_map_lookup_elem(&lost, &kind);

	if (n)
		*n += 1;
}

/* Field f passes the filter `word`: untested, or its value is (allow) or is not (deny) in the field's set. */
static __always_inline int field_passes(__u32 word, __u32 f, __u32 value)
{
	struct dw_filter_key k = { .field = f | (word & DW_FILTER_GEN ? 1U << 8 : 0), .value = value };

	if (!(word & DW_FILTER_TESTS(f)))
		return 1;
	return (bpf_map_lookup_elem(&filter_values, &k) != 0) == !!(word & DW_FILTER_ALLOWS(f));
}

/* The device's name passes: untested, or it is (allow) or is not (deny) in the set; no device reads as no name. */
static __always_inline int name_passes(__u32 word, struct net_device *dev)
{
	struct dw_filter_key k = { .field = DW_FIELD_IFNAME | (word & DW_FILTER_GEN ? 1U << 8 : 0) };

	if (!(word & DW_FILTER_TESTS(DW_FIELD_IFNAME)))
		return 1;
	/* Up to the NUL only: a renamed device may keep bytes of its old name after it. */
	if (dev)
		bpf_probe_read_kernel_str(k.name, sizeof(k.name), dev->name);
	return (bpf_map_lookup_elem(&filter_values, &k) != 0) == !!(word & DW_FILTER_ALLOWS(DW_FIELD_IFNAME));
}

/* The kernel filter's verdict on a drop: a conjunction, each field tested once; the word is read once per drop. */
static __always_inline int passes(const struct dw_count_key *key, struct net_device *dev)
{
	__u32 word = filter_word;

	if (!(word & DW_FILTER_ON))
		return 1;
	if (word & DW_FILTER_NONE)
		return 0;
	return field_passes(word, DW_FIELD_PROTOCOL, key->protocol) && field_passes(word, DW_FIELD_REASON, key->reason) &&
	       field_passes(word, DW_FIELD_NETNS, key->netns) && field_passes(word, DW_FIELD_IFINDEX, key->ifindex) &&
	       name_passes(word, dev);
}

#define PF_KTHREAD 0x00200000
/* The smallest kernel stack (x86-64 and arm64 without KASAN); stacks are allocated aligned to their size or more. */
#define DW_STACK_BYTES (16 * 1024)

/*
 * Whether the drop happens in a user task's own context (a send, a socket call), not in a hard irq, NMI or softirq.
 * Those run on their own per-CPU stacks, so the test is whether this program's frame lies on the current task's
 * stack. (The per-CPU preempt count would say the same, but a program reaches it only through a ksym, which needs
 * CONFIG_KALLSYMS_ALL, and many kernels, this project's test kernel among them, lack it.) Kernel threads are left out:
 * ksoftirqd and threaded NAPI run softirq work on their own stacks. On a kernel with larger stacks the test fails
 * more often: then fewer drops name a task, never a wrong one.
 */
static __always_inline int in_task(void)
{
	struct task_struct *task = bpf_get_current_task_btf();
	char frame = 0;
	__u64 sp;

	if (task->flags & PF_KTHREAD)
		return 0;
	/*
	 * The frame's address as a number. The verifier allows no arithmetic on a stack pointer but the difference of two
	 * pointers (a number, for a program with CAP_PERFMON); the task's address as a number comes from another helper.
	 */
	sp = (__u64)((char *)&frame - (char *)task) + bpf_get_current_task();
	return (sp & ~(__u64)(DW_STACK_BYTES - 1)) == (__u64)task->stack;
}

/* The namespace the drop belongs to: the device's, else the socket's; 0 when there is neither. */
static __always_inline __u32 netns_of(struct net_device *dev, struct sock *sk)
{
	struct net *net = 0;

	if (dev)
		net = dev->nd_net.net;
	else if (sk)
		net = sk->__sk_common.skc_net.net;
	return net ? net->ns.inum : 0;
}

static __always_inline void count_drop(struct dw_count_key *key, struct net_device *dev)
{
	__u32 slot = 0;
	void *table = bpf_map_lookup_elem(&active, &slot);
	struct dw_count_value *value, fresh = {};

	if (!table)
		return;
	value = bpf_map_lookup_elem(table, key);
	if (value) {
		value->count += 1;
		return;
	}
	fresh.count = 1;
	if (dev)
		bpf_probe_read_kernel_str(fresh.ifname, sizeof(fresh.ifname), dev->name);
	if (key->pid)
		bpf_get_current_comm(fresh.comm, sizeof(fresh.comm));
	if (bpf_map_update_elem(table, key, &fresh, BPF_NOEXIST) == 0)
		return;
	/* Made meanwhile by a nested run on this CPU, or the table is full. */
	value = bpf_map_lookup_elem(table, key);
	if (value)
		value->count += 1;
	else
		count_lost(DW_LOST_TABLE_FULL);
}

static __always_inline void send_packet(struct sk_buff *skb, struct dw_count_key *key, struct net_device *dev,
					__s32 stack)
{
	struct dw_packet *rec;
	unsigned char *head, *from;
	__u16 mac, network;
	__u64 len, want, avail;
	__u64 flags = BPF_RB_NO_WAKEUP;

	rec = bpf_ringbuf_reserve(&packets, sizeof(*rec), 0);
	if (!rec) {
		count_lost(DW_LOST_RING_FULL);
		return;
	}
	rec->time_ns = bpf_ktime_get_ns();
	rec->location = key->location;
	rec->reason = key->reason;
	rec->netns = key->netns;
	rec->ifindex = key->ifindex;
	rec->protocol = key->protocol;
	rec->pid = key->pid;
	rec->cgroup = key->cgroup;
	rec->comm[0] = 0;
	if (key->pid)
		bpf_get_current_comm(rec->comm, sizeof(rec->comm));
	rec->ifname[0] = 0;
	if (dev)
		bpf_probe_read_kernel_str(rec->ifname, sizeof(rec->ifname), dev->name);
	len = skb->len;
	head = skb->head;
	mac = skb->mac_header;
	network = skb->network_header;
	/* From the MAC header where it is set (as NET_DM sends it), else from the network header. */
	rec->from_mac = mac != (__u16)~0U;
	from = head + (rec->from_mac ? mac : network);
	/* The bytes before skb->data (headers already pulled) still count in the packet's length. */
	len += skb->data - from;
	rec->orig_len = len;
	want = capture_len;
	if (want > len)
		want = len;
	/* The verifier must see the size passed on bounded: clamp in 64 bits, in the register that is passed. */
	barrier_var(want);
	if (want > DW_MAX_CAPTURE)
		want = DW_MAX_CAPTURE;
	rec->cap_len = 0;
	if (want > 0 && bpf_probe_read_kernel(rec->data, want, from) == 0)
		rec->cap_len = want;
	/*
	 * Woken once as the data waiting crosses wakeup_bytes, not on every record past it: a reader behind a flood is
	 * awake already, and each wakeup is an irq_work. A crossing raced past by another CPU is left to the reader's timer.
	 */
	avail = bpf_ringbuf_query(&packets, BPF_RB_AVAIL_DATA);
	if (avail >= wakeup_bytes && avail < wakeup_bytes + 2 * (sizeof(*rec) + 8))
		flags = BPF_RB_FORCE_WAKEUP;
	note_packet_stack(rec, stack);
	bpf_ringbuf_submit(rec, flags);
}

SEC("tp_btf/kfree_skb")
int on_kfree_skb(__u64 *ctx)
{
	struct sk_buff *skb = (struct sk_buff *)ctx[0];
	struct dw_count_key key;
	struct net_device *dev;
	struct sock *sk;
	__s32 stack;

	__builtin_memset(&key, 0, sizeof(key));
	key.location = ctx[1];
	key.reason = (__u32)ctx[2];
	dev = skb->dev;
	sk = skb->sk;
	key.netns = netns_of(dev, sk);
	key.ifindex = dev ? dev->ifindex : 0;
	key.protocol = bpf_ntohs(skb->protocol);
	if (!passes(&key, dev)) {
		count_lost(DW_FILTERED);
		return 0;
	}
	if (in_task()) {
		key.pid = bpf_get_current_pid_tgid() >> 32;
		key.cgroup = bpf_get_current_cgroup_id();
	}
	stack = take_stack(ctx);
	if (capture_mode == DW_MODE_PACKET) {
		send_packet(skb, &key, dev, stack);
	} else {
		count_drop(&key, dev);
		/* After the count: a sample drained with its table is never ahead of its drop's count. */
		if (stack != DW_STACK_SKIPPED)
			tally_stack(&key, stack);
	}
	return 0;
}

/*
 * Hardware drops: devlink:devlink_trap_report (devlink, skb, metadata), attached only when they are asked for and the
 * kernel has devlink. Like NET_DM, control traps (packets trapped to the CPU on purpose) are not drops and are left out.
 */

/* Per (trap, group, input port), counts that only grow: user space reports what they grew by since it last read. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, DW_MAX_TRAP_KEYS);
	__type(key, struct dw_trap_key);
	__type(value, struct dw_trap_value);
} trap_counts SEC(".maps");

/* Per CPU: hardware drops not counted or not delivered, by DW_TRAP_LOST_* cause. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DW_TRAP_LOST_KINDS);
	__type(key, __u32);
	__type(value, __u64);
} trap_lost SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, DW_TRAP_RING_BYTES);
} trap_packets SEC(".maps");

static __always_inline void count_trap_lost(__u32 kind)
{
	__u64 *n = bpf_map_lookup_elem(&trap_lost, &kind);

	if (n)
		*n += 1;
}

/* The kernel filter on a hardware drop: its protocol, its input port (index and name), and no reason (in no set). */
static __always_inline int trap_passes(const struct dw_trap_key *key, __u16 protocol, struct net_device *dev)
{
	__u32 word = filter_word;

	if (!(word & DW_FILTER_ON))
		return 1;
	if (word & DW_FILTER_NONE)
		return 0;
	return field_passes(word, DW_FIELD_PROTOCOL, protocol) && field_passes(word, DW_FIELD_REASON, DW_TRAP_NO_REASON) &&
	       field_passes(word, DW_FIELD_NETNS, key->netns) && field_passes(word, DW_FIELD_IFINDEX, key->ifindex) &&
	       name_passes(word, dev);
}

static __always_inline void count_trap(const struct dw_trap_key *key, struct net_device *dev)
{
	struct dw_trap_value *value, fresh = {};

	value = bpf_map_lookup_elem(&trap_counts, key);
	if (value) {
		value->count += 1;
		return;
	}
	fresh.count = 1;
	if (dev)
		bpf_probe_read_kernel_str(fresh.ifname, sizeof(fresh.ifname), dev->name);
	if (bpf_map_update_elem(&trap_counts, key, &fresh, BPF_NOEXIST) == 0)
		return;
	/* Made meanwhile by a nested run on this CPU, or the table is full. */
	value = bpf_map_lookup_elem(&trap_counts, key);
	if (value)
		value->count += 1;
	else
		count_trap_lost(DW_TRAP_LOST_TABLE_FULL);
}

/* The packet as NET_DM reports a trapped one: from skb->data, its length and protocol, the trap and the input port. */
static __always_inline void send_trap(struct sk_buff *skb, const struct dw_trap_key *key, __u16 protocol,
				      struct net_device *dev)
{
	struct dw_trap_packet *rec;
	__u64 len, want;

	rec = bpf_ringbuf_reserve(&trap_packets, sizeof(*rec), 0);
	if (!rec) {
		count_trap_lost(DW_TRAP_LOST_RING_FULL);
		return;
	}
	rec->time_ns = bpf_ktime_get_ns();
	rec->ifindex = key->ifindex;
	rec->netns = key->netns;
	rec->protocol = protocol;
	__builtin_memcpy(rec->trap, key->trap, sizeof(rec->trap));
	__builtin_memcpy(rec->group, key->group, sizeof(rec->group));
	rec->ifname[0] = 0;
	if (dev)
		bpf_probe_read_kernel_str(rec->ifname, sizeof(rec->ifname), dev->name);
	len = skb->len;
	rec->orig_len = len;
	want = capture_len;
	if (want > len)
		want = len;
	barrier_var(want);
	if (want > DW_MAX_CAPTURE)
		want = DW_MAX_CAPTURE;
	rec->cap_len = 0;
	if (want > 0 && bpf_probe_read_kernel(rec->data, want, skb->data) == 0)
		rec->cap_len = want;
	/* Hardware drops are few: the reader's timer collects them, so no wakeup is ever needed. */
	bpf_ringbuf_submit(rec, BPF_RB_NO_WAKEUP);
}

SEC("tp_btf/devlink_trap_report")
int on_trap_report(__u64 *ctx)
{
	struct sk_buff *skb = (struct sk_buff *)ctx[1];
	const struct devlink_trap_metadata *md = (const struct devlink_trap_metadata *)ctx[2];
	struct net_device *dev;
	struct dw_trap_key key;
	__u16 protocol;

	if (md->trap_type == DW_DEVLINK_TRAP_TYPE_CONTROL)
		return 0;
	__builtin_memset(&key, 0, sizeof(key));
	bpf_probe_read_kernel_str(key.trap, sizeof(key.trap), md->trap_name);
	bpf_probe_read_kernel_str(key.group, sizeof(key.group), md->trap_group_name);
	dev = md->input_dev;
	key.ifindex = dev ? dev->ifindex : 0;
	key.netns = netns_of(dev, 0);
	protocol = bpf_ntohs(skb->protocol);
	if (!trap_passes(&key, protocol, dev)) {
		count_lost(DW_FILTERED);
		return 0;
	}
	if (capture_mode == DW_MODE_PACKET)
		send_trap(skb, &key, protocol, dev);
	else
		count_trap(&key, dev);
	return 0;
}
