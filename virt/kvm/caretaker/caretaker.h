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
#include <linux/kho/abi/kvm_caretaker.h>
#include <linux/types.h>
#include <linux/workqueue.h>

#define CARETAKER_LUO_COMPATIBLE	KVM_CARETAKER_LUO_COMPATIBLE

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

/**
 * struct caretaker_mem_slot - a memslot of the orphan and its pinned memory
 * @id: the memslot's id (address space 0)
 * @flags: its KVM_MEM_* flags
 * @base_gfn: its first guest frame
 * @npages: its size in pages
 * @file: the memfd behind it (a reference)
 * @offset: where in @file the memslot starts
 * @folios: the pinned folios of [@offset, @offset + @npages pages)
 * @nr_folios: entries in @folios
 * @pfns: the host frame of each of the @npages guest pages
 * @nr_held: of @pfns, how many the orphan holds (an incoming orphan's,
 *	caretaker_mem_hold())
 * @frozen: @file is frozen (shmem_freeze()) by this memslot
 */
struct caretaker_mem_slot {
	u32 id;
	u32 flags;
	gfn_t base_gfn;
	unsigned long npages;
	struct file *file;
	loff_t offset;
	struct folio **folios;
	unsigned int nr_folios;
	unsigned long *pfns;
	unsigned long nr_held;
	bool frozen;
};

/**
 * struct caretaker_orphan - what a caretaker fd stands for
 * @lock: serializes the fd's operations and ATTACH
 * @state: KVM_CARETAKER_STATE_*
 * @src: the VM it was prepared on (a reference), until it is adopted
 * @nr_vcpus: number of vCPUs
 * @cpus: the physical CPU of each vCPU, by vCPU index
 * @vcpu_ids: the vCPU id of each vCPU, by vCPU index
 * @nr_slots: entries in @slots
 * @slots: the memslots and their pinned memory
 * @stall_ns: duration of the last DETACH or ATTACH (vCPUs stopped to guest resumed)
 * @detaching: on the list of DETACHes in progress (caretaker_vcpu_stopped())
 * @detach: the DETACH in progress, while on that list
 * @parking: its CPUs are parked (counted by caretaker_parking())
 * @leaked: a CPU did not stop: its memory and the guest's stay allocated
 * @incoming: left running by the previous kernel (LUO retrieve): its
 *	memory is not pinned here, the memfds the adopter maps must be its
 * @debugfs: its directory under /sys/kernel/debug/caretaker/
 * @release_work: gives the CPUs and memory back after ATTACH
 * @prepared: the VM that ATTACH_PREPARE held for it (a reference), until
 *	ATTACH adopts the orphan into it or into another VM; its vCPUs
 *	refuse KVM_RUN and its memslots are frozen, for good unless ATTACH
 *	succeeds into it
 * @preloaded: @prepared holds the orphan's state but what the guest
 *	changed since: ATTACH need not load the rest
 * @adopter: the VM that adopted it (a reference), until @release_work ran
 * @adopter_exits: each adopting vCPU's exit count (kvm_vcpu_stat.exits)
 *	when ATTACH loaded it, to tell when it has run
 * @arch: the architecture's part
 */
struct caretaker_detach;

struct caretaker_orphan {
	struct mutex lock;	/* see the kernel-doc above */
	u32 state;
	struct kvm *src;
	u32 nr_vcpus;
	u32 *cpus;
	u32 *vcpu_ids;
	u32 nr_slots;
	struct caretaker_mem_slot *slots;
	u64 stall_ns;
	struct list_head detaching;
	struct caretaker_detach *detach;
	bool parking;
	bool leaked;
	bool incoming;
	struct dentry *debugfs;
	struct delayed_work release_work;
	struct kvm *prepared;
	bool preloaded;
	struct kvm *adopter;
	u64 *adopter_exits;
	void *arch;
};

/**
 * struct caretaker_ser_buf - the variable part of a serialized orphan
 * @data: the buffer, or NULL while the size is being computed
 * @size: bytes used so far
 *
 * Serializing runs twice: once with @data NULL to size the buffer, once
 * to fill it, so the writers need no bounds of their own.
 */
struct caretaker_ser_buf {
	u8 *data;
	size_t size;
};

u64 caretaker_ser_add(struct caretaker_ser_buf *b, const void *src, size_t len);
void *caretaker_ser_ptr(struct caretaker_ser_buf *b, u64 off);

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
void caretaker_vcpu_stopped(struct kvm_vcpu *vcpu);
int caretaker_orphan_create(struct kvm *kvm, const u32 *cpus, u32 nr_cpus);
long caretaker_orphan_adopt(struct kvm *kvm, struct file *file, bool prepare);
struct file *caretaker_orphan_incoming(const struct kvm_caretaker_ser *ser, const void *data);

/* memory.c */
struct caretaker_refusal caretaker_mem_pin(struct caretaker_orphan *o, struct kvm *kvm);
void caretaker_mem_release(struct caretaker_orphan *o);
int caretaker_mem_hold(struct caretaker_orphan *o);
void caretaker_mem_unhold(struct caretaker_orphan *o);
void *caretaker_mem_kaddr(struct caretaker_orphan *o, gpa_t gpa);
struct caretaker_refusal caretaker_mem_check_adopter(struct caretaker_orphan *o,
						     struct kvm *kvm);

/* luo.c */
int caretaker_luo_init(void);
void caretaker_luo_exit(void);
bool caretaker_luo_available(void);

/* arch: checks of VM features the caretaker cannot carry. */
int caretaker_arch_init(void);
void caretaker_arch_exit(void);
struct caretaker_refusal caretaker_arch_check_vm_type(struct kvm *kvm);
struct caretaker_refusal caretaker_arch_check_vm(struct kvm *kvm);

/* arch: the orphan's life, see orphan.c for the order of calls. */
struct caretaker_refusal caretaker_arch_prepare(struct caretaker_orphan *o,
						struct kvm *kvm);
/* What a failed DETACH did to the orphan's CPUs. */
enum caretaker_spent {
	CARETAKER_NOT_SPENT,	/* none ran the guest: DETACH may be tried again */
	CARETAKER_SPENT,	/* some ran it, stopped and gave it back */
	CARETAKER_LOST,		/* one did not stop: it may still run the guest */
};

struct caretaker_refusal caretaker_arch_check_stopped(struct kvm_vcpu *vcpu);
struct caretaker_refusal caretaker_arch_handover(struct caretaker_orphan *o,
						 struct kvm_vcpu *vcpu, bool wait);
struct caretaker_refusal caretaker_arch_detach(struct caretaker_orphan *o,
					       struct kvm *kvm, u64 t0,
					       enum caretaker_spent *spent);
struct caretaker_refusal caretaker_arch_check_adopter(struct caretaker_orphan *o,
						      struct kvm *kvm, bool vm_only);
struct caretaker_refusal caretaker_arch_preload(struct caretaker_orphan *o,
						struct kvm *kvm);
struct caretaker_refusal caretaker_arch_try_state(struct caretaker_orphan *o,
						  struct kvm *kvm);
struct caretaker_refusal caretaker_arch_attach(struct caretaker_orphan *o,
					       struct kvm *kvm, bool preloaded,
					       bool *loaded);
void caretaker_arch_release(struct caretaker_orphan *o);
int caretaker_arch_serialize(struct caretaker_orphan *o, struct kvm_caretaker_ser *ser,
			     struct caretaker_ser_buf *b);
struct caretaker_refusal caretaker_arch_incoming(struct caretaker_orphan *o,
						 const struct kvm_caretaker_ser *ser,
						 const void *data);
void caretaker_arch_abandon(struct caretaker_orphan *o);
bool caretaker_arch_can_take(const struct kvm_caretaker_ser *ser);
void caretaker_arch_free(struct caretaker_orphan *o);
int caretaker_arch_vcpu_status(struct caretaker_orphan *o,
			       struct kvm_caretaker_vcpu_status *vs);
int caretaker_arch_kick(struct caretaker_orphan *o, unsigned int n);
int caretaker_arch_ipi(struct caretaker_orphan *o, unsigned int vector);
void caretaker_arch_status(struct caretaker_orphan *o,
			   struct kvm_caretaker_status *st);

/* main.c */
extern struct dentry *caretaker_debugfs_root;
void caretaker_parking(bool parking);
void caretaker_log_refusal(struct kvm *kvm, const char *op,
			   struct caretaker_refusal r);

#endif /* __VIRT_KVM_CARETAKER_H */
