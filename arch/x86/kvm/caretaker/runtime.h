/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The kernel's side of the caretaker runtime: one instance per orphan,
 * its address space, and the CPUs parked in it.
 */
#ifndef __CARETAKER_RUNTIME_H
#define __CARETAKER_RUNTIME_H

#include <linux/types.h>

#include "pgtable.h"
#include "rt_abi.h"

struct ct_runtime;

/**
 * struct ct_runtime_cpu - one parked CPU of a runtime instance
 * @rt: the instance
 * @index: index in the instance: the area at CTRT_CPU_VA(@index)
 * @cpu: the Linux CPU number
 * @parked: cpu_park() succeeded and cpu_unpark() was not called yet
 * @cb: the control block (kernel address)
 * @vmcb: the VMCB page (kernel address)
 * @xsave: the guest's XSAVE image (kernel address)
 * @cpuid: the guest's CPUID table (kernel address)
 * @region: kernel addresses of the area's regions, by region index
 * @region_pa: their physical addresses
 */
struct ct_runtime_cpu {
	struct ct_runtime *rt;
	unsigned int index;
	unsigned int cpu;
	bool parked;
	struct ctrt_cpu *cb;
	void *vmcb;
	void *xsave;
	struct ctrt_cpuid *cpuid;
	void *region[14];
	phys_addr_t region_pa[14];
};

/**
 * struct ct_runtime - a runtime instance
 * @pt: its page table (CR3)
 * @bridge: the bridge top level: the kernel's, plus the runtime's slot
 * @image: the copied image
 * @image_order: allocation order of @image
 * @entry: the entry point (runtime address)
 * @xsave_size: bytes of each CPU's XSAVE region
 * @incoming: taken over from the previous kernel (ct_runtime_adopt()):
 *	its pages are order-0 pages restored from KHO
 * @nr_cpus: CPUs in @cpus
 * @cpus: the parked CPUs
 */
struct ct_runtime {
	struct ct_pgtable pt;
	u64 *bridge;
	struct page *image;
	unsigned int image_order;
	u64 entry;
	u32 xsave_size;
	bool incoming;
	unsigned int nr_cpus;
	struct ct_runtime_cpu cpus[] __counted_by(nr_cpus);
};

struct ct_runtime *ct_runtime_create(unsigned int nr_cpus, const u32 *cpus,
				     u32 xsave_size);
int ct_runtime_park(struct ct_runtime *rt);
void ct_runtime_start(struct ct_runtime_cpu *c);
int ct_runtime_wait_started(struct ct_runtime_cpu *c);
void ct_runtime_nmi(struct ct_runtime_cpu *c);
int ct_runtime_stop(struct ct_runtime_cpu *c);
struct kvm_caretaker_range;
struct ct_runtime *ct_runtime_adopt(unsigned int nr_cpus, const u32 *cpus, u32 xsave_size,
				    phys_addr_t cr3, const struct kvm_caretaker_range *ranges,
				    u32 nr_ranges);
bool ct_runtime_destroy(struct ct_runtime *rt);
void ct_runtime_image_cache_free(void);
phys_addr_t ct_runtime_pa(struct ct_runtime_cpu *c, unsigned long off);
/* A callback of ct_runtime_list_ranges(). */
typedef void (*ct_range_fn)(void *arg, phys_addr_t pa, unsigned long nr_pages,
			    u32 kind, u32 index);
void ct_runtime_list_ranges(struct ct_runtime *rt, ct_range_fn fn, void *arg);

#endif /* __CARETAKER_RUNTIME_H */
