// SPDX-License-Identifier: GPL-2.0
// dropwatch's BPF program: every skb:kfree_skb the kernel filter lets through counted in the kernel per (location,
// reason, netns, device, protocol, task), or, in packet mode, copied with its first bytes into a ring buffer. CO-RE:
// the kernel types it reads are declared in vmlinux-min.h with only the fields used, and libbpf relocates them against
// the running kernel's BTF.
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

/* The kernel filter's verdict on a drop: a conjunction, each field tested once; the word is read once per drop. */
static __always_inline int passes(const struct dw_count_key *key)
{
	__u32 word = filter_word;

	if (!(word & DW_FILTER_ON))
		return 1;
	if (word & DW_FILTER_NONE)
		return 0;
	return field_passes(word, DW_FIELD_PROTOCOL, key->protocol) && field_passes(word, DW_FIELD_REASON, key->reason) &&
	       field_passes(word, DW_FIELD_NETNS, key->netns) && field_passes(word, DW_FIELD_IFINDEX, key->ifindex);
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

static __always_inline void send_packet(struct sk_buff *skb, struct dw_count_key *key, struct net_device *dev)
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
	bpf_ringbuf_submit(rec, flags);
}

SEC("tp_btf/kfree_skb")
int on_kfree_skb(__u64 *ctx)
{
	struct sk_buff *skb = (struct sk_buff *)ctx[0];
	struct dw_count_key key;
	struct net_device *dev;
	struct sock *sk;

	__builtin_memset(&key, 0, sizeof(key));
	key.location = ctx[1];
	key.reason = (__u32)ctx[2];
	dev = skb->dev;
	sk = skb->sk;
	key.netns = netns_of(dev, sk);
	key.ifindex = dev ? dev->ifindex : 0;
	key.protocol = bpf_ntohs(skb->protocol);
	if (!passes(&key)) {
		count_lost(DW_FILTERED);
		return 0;
	}
	if (in_task())
		key.pid = bpf_get_current_pid_tgid() >> 32;
	if (capture_mode == DW_MODE_PACKET)
		send_packet(skb, &key, dev);
	else
		count_drop(&key, dev);
	return 0;
}
