/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Caretaker: internal interfaces between the generic core
 * (virt/kvm/caretaker/) and the architecture code (arch/.../caretaker/).
 */
#ifndef __VIRT_KVM_CARETAKER_H
#define __VIRT_KVM_CARETAKER_H

#include <linux/cpumask.h>
#include <linux/kvm_host.h>
#include <linux/kvm_caretaker.h>
#include <linux/types.h>

#define CARETAKER_LUO_COMPATIBLE	"kvm-caretaker-v1"

/**
 * struct caretaker_refusal - why a request was refused
 * @err: the negative errno returned to userspace
 * @why: a short, constant reason, logged (ratelimited) for the operator
 */
struct caretaker_refusal {
	int err;
	const char *why;
};

#define CARETAKER_OK ((struct caretaker_refusal){ 0, NULL })
#define CARETAKER_REFUSE(e, w) ((struct caretaker_refusal){ (e), (w) })

/* validate.c: pure checks, KUnit-tested. */
struct caretaker_refusal caretaker_check_zero(const void *p, size_t len,
					      const char *what);
struct caretaker_refusal caretaker_check_args(u32 flags, const void *reserved,
					      size_t len);
struct caretaker_refusal caretaker_check_cpus(const u32 *cpus, u32 nr_cpus,
					      u32 nr_vcpus,
					      unsigned int nr_cpu_ids,
					      const struct cpumask *online,
					      const struct cpumask *hotpluggable,
					      struct cpumask *seen);

/* prepare.c */
long caretaker_prepare(struct kvm *kvm, void __user *argp);
long caretaker_attach(struct kvm *kvm, void __user *argp);

/* orphan.c */
bool caretaker_file_is_orphan(struct file *file);

/* luo.c */
int caretaker_luo_init(void);
void caretaker_luo_exit(void);
bool caretaker_luo_available(void);

/* arch: checks of VM features the caretaker cannot carry. */
int caretaker_arch_init(void);
struct caretaker_refusal caretaker_arch_check_vm_type(struct kvm *kvm);
struct caretaker_refusal caretaker_arch_check_vm(struct kvm *kvm);

/* main.c */
void caretaker_log_refusal(struct kvm *kvm, const char *op,
			   struct caretaker_refusal r);

#endif /* __VIRT_KVM_CARETAKER_H */
