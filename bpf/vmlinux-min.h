/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The few kernel types dropwatch.bpf.c reads, with only the fields it reads. preserve_access_index makes every
 * access a CO-RE relocation: libbpf finds each field by name in the running kernel's BTF, so layouts may differ.
 */
#ifndef DROPWATCH_VMLINUX_MIN_H
#define DROPWATCH_VMLINUX_MIN_H

#include <linux/bpf.h>

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

struct ns_common {
	unsigned int inum;
};

struct net {
	struct ns_common ns;
};

typedef struct {
	struct net *net;
} possible_net_t;

struct net_device {
	char name[16];
	int ifindex;
	possible_net_t nd_net;
};

struct sock_common {
	possible_net_t skc_net;
};

struct sock {
	struct sock_common __sk_common;
};

struct sk_buff {
	struct net_device *dev;
	struct sock *sk;
	unsigned int len;
	__be16 protocol;
	__u16 mac_header;
	__u16 network_header;
	unsigned char *head;
	unsigned char *data;
};

struct task_struct {
	unsigned int flags;
	void *stack;
};

/* devlink:devlink_trap_report's metadata (hardware drops). The enumerators are ours: only the type's name is matched. */
enum devlink_trap_type {
	DW_DEVLINK_TRAP_TYPE_DROP,
	DW_DEVLINK_TRAP_TYPE_EXCEPTION,
	DW_DEVLINK_TRAP_TYPE_CONTROL,
};

struct devlink_trap_metadata {
	const char *trap_name;
	const char *trap_group_name;
	struct net_device *input_dev;
	enum devlink_trap_type trap_type;
};

#pragma clang attribute pop

#endif
