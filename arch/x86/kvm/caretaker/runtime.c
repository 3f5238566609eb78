// SPDX-License-Identifier: GPL-2.0-only
/*
 * The kernel's side of the caretaker runtime: copy the image, build its
 * address space, park CPUs in it, start and stop the guest on them, and
 * give the CPUs back.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/cpu.h>
#include <linux/delay.h>
#include <linux/gfp.h>
#include <linux/kexec_handover.h>
#include <linux/kho/abi/kvm_caretaker.h>
#include <linux/ktime.h>
#include <linux/log2.h>
#include <linux/mm.h>
#include <linux/pgtable.h>
#include <linux/slab.h>
#include <asm/apic.h>
#include <asm/nospec-branch.h>
#include <asm/svm.h>

#include "runtime.h"

extern const u8 caretaker_rt_image[], caretaker_rt_image_end[];

/**
 * DOC: the runtime's memory
 *
 * Everything the runtime touches is allocated at PREPARE from unmovable
 * kernel memory (never CMA or movable zones, so never KHO's scratch
 * area) and stays where it is until the orphan is released: the image
 * (the last released instance's pages if there are any, its text left
 * as it is: ct_runtime_image_get()), its page tables, and per parked
 * CPU a control block, GDT/TSS, IDT, VMCB, two save areas, private
 * copies of the I/O and MSR permission maps, three stacks, the guest's
 * CPUID table and its XSAVE image.  The runtime's CR3 maps exactly
 * these (struct ct_runtime) and nothing of the kernel, but for the
 * local APIC's page (uncached) when the APIC is in xAPIC mode.
 */
static const struct {
	unsigned long off;
	unsigned long size;	/* 0: the XSAVE region, sized per VM */
} ct_regions[] = {
	{ CTRT_OFF_CB,		PAGE_SIZE },
	{ CTRT_OFF_GDT,		PAGE_SIZE },
	{ CTRT_OFF_IDT,		PAGE_SIZE },
	{ CTRT_OFF_VMCB,	PAGE_SIZE },
	{ CTRT_OFF_HOSTSAVE,	PAGE_SIZE },
	{ CTRT_OFF_HSAVE,	PAGE_SIZE },
	{ CTRT_OFF_MSRPM,	CTRT_MSRPM_SIZE },
	{ CTRT_OFF_IOPM,	CTRT_IOPM_SIZE },
	{ CTRT_OFF_NMI_STACK,	CTRT_NMI_STACK_SIZE },
	{ CTRT_OFF_EXC_STACK,	CTRT_EXC_STACK_SIZE },
	{ CTRT_OFF_STACK,	CTRT_STACK_SIZE },
	{ CTRT_OFF_CPUID,	CTRT_CPUID_SIZE },
	{ CTRT_OFF_XSAVE,	0 },
};

static_assert(ARRAY_SIZE(ct_regions) <= ARRAY_SIZE(((struct ct_runtime_cpu *)0)->region));
static_assert(sizeof(struct ctrt_cpu) <= PAGE_SIZE);
static_assert(offsetof(struct ctrt_cpu, cr3) == CTRT_CB_CR3);
static_assert(offsetof(struct vmcb, control.tlb_ctl) == CTRT_VMCB_TLB_CTL);
static_assert(offsetof(struct vmcb, control.exit_code) == CTRT_VMCB_EXIT_CODE);
static_assert(offsetof(struct vmcb, control.exit_info_1) == CTRT_VMCB_EXIT_INFO1);
static_assert(offsetof(struct vmcb, control.exit_info_2) == CTRT_VMCB_EXIT_INFO2);
static_assert(offsetof(struct vmcb, control.clean) == CTRT_VMCB_CLEAN);
static_assert(offsetof(struct vmcb, save.rip) == CTRT_VMCB_RIP);
static_assert(CTRT_OFF_XSAVE + CTRT_XSAVE_MAX <= CTRT_OFF_CPUID);
static_assert(CTRT_OFF_CPUID + CTRT_CPUID_SIZE <= CTRT_CPU_SIZE);
static_assert(sizeof(struct ctrt_cpuid) <= CTRT_CPUID_SIZE);
static_assert(offsetof(struct vmcb, control.int_state) == CTRT_VMCB_INT_STATE);
static_assert(offsetof(struct vmcb, control.next_rip) == CTRT_VMCB_NEXT_RIP);
static_assert(offsetof(struct vmcb, save.cpl) == CTRT_VMCB_CPL);
static_assert(offsetof(struct vmcb, save.cr4) == CTRT_VMCB_CR4);
static_assert(offsetof(struct vmcb, save.rflags) == CTRT_VMCB_RFLAGS);
static_assert(offsetof(struct vmcb, save.rax) == CTRT_VMCB_RAX);
static_assert(offsetof(struct vmcb, control.intercepts[INTERCEPT_VINTR / 32]) ==
	      CTRT_VMCB_INTERCEPT_VINTR);
static_assert(INTERCEPT_VINTR % 32 == CTRT_VINTR_BIT);
static_assert(offsetof(struct vmcb, control.int_ctl) == CTRT_VMCB_INT_CTL);
static_assert(offsetof(struct vmcb, control.exit_int_info) == CTRT_VMCB_EXIT_INT_INFO);
static_assert(offsetof(struct vmcb, control.exit_int_info_err) == CTRT_VMCB_EXIT_INT_ERR);
static_assert(offsetof(struct vmcb, control.event_inj) == CTRT_VMCB_EVENT_INJ);
static_assert(offsetof(struct vmcb, control.event_inj_err) == CTRT_VMCB_EVENT_INJ_ERR);
static_assert(V_IRQ_MASK == CTRT_V_IRQ && V_IGN_TPR_MASK == CTRT_V_IGN_TPR &&
	      V_INTR_PRIO_MASK == CTRT_V_INTR_PRIO);
static_assert(SVM_INTERRUPT_SHADOW_MASK == CTRT_INT_SHADOW);
static_assert(CTRT_EVTINJ_VALID == (u32)SVM_EVTINJ_VALID &&
	      CTRT_EVTINJ_VALID == (u32)SVM_EXITINTINFO_VALID &&
	      CTRT_EVTINJ_TYPE_INTR == SVM_EVTINJ_TYPE_INTR);

/* How long a parked CPU may take to answer (TCG test hosts are slow). */
#define CT_RUNTIME_TIMEOUT_MS	5000

static unsigned long ct_region_size(struct ct_runtime *rt, unsigned int r)
{
	return ct_regions[r].size ?: PAGE_ALIGN(rt->xsave_size);
}

/**
 * ct_runtime_list_ranges() - every page a runtime instance runs on
 * @rt: the instance
 * @fn: called for each allocation: its physical address, its number of
 *	pages, its KVM_CARETAKER_RANGE_* kind and, for a CPU's region,
 *	(CPU index << 8) | region
 * @arg: @fn's first argument
 *
 * The image, each CPU's regions and the runtime's page table: what must
 * stay in place while a parked CPU runs it.  Not the bridge page table,
 * which is used only to enter the runtime.
 *
 * Context: any context.
 */
void ct_runtime_list_ranges(struct ct_runtime *rt, ct_range_fn fn, void *arg)
{
	struct page *page;
	unsigned int i, r;

	fn(arg, page_to_phys(rt->image), 1UL << rt->image_order,
	   KVM_CARETAKER_RANGE_IMAGE, 0);
	for (i = 0; i < rt->nr_cpus; i++)
		for (r = 0; r < ARRAY_SIZE(ct_regions); r++)
			if (rt->cpus[i].region[r])
				fn(arg, rt->cpus[i].region_pa[r],
				   1UL << get_order(ct_region_size(rt, r)),
				   KVM_CARETAKER_RANGE_CPU, (i << 8) | r);
	list_for_each_entry(page, &rt->pt.pages, lru)
		fn(arg, page_to_phys(page), 1, KVM_CARETAKER_RANGE_RT_TABLE, 0);
}

/**
 * ct_runtime_pa() - physical address of a place in a CPU's area
 * @c: the CPU
 * @off: offset in its area, inside one of its regions
 *
 * Return: the physical address, or 0 if @off is in no region.
 */
phys_addr_t ct_runtime_pa(struct ct_runtime_cpu *c, unsigned long off)
{
	unsigned int r;

	for (r = 0; r < ARRAY_SIZE(ct_regions); r++)
		if (off >= ct_regions[r].off &&
		    off < ct_regions[r].off + ct_region_size(c->rt, r))
			return c->region_pa[r] + off - ct_regions[r].off;
	return 0;
}

/*
 * Free what ct_runtime_create() allocated with alloc_pages(@order), or
 * what ct_runtime_adopt() restored from KHO: order-0 pages, each its own.
 */
static void ct_runtime_free_pages(struct ct_runtime *rt, struct page *page,
				  unsigned int order)
{
	unsigned long i;

	if (!rt->incoming) {
		__free_pages(page, order);
		return;
	}
	for (i = 0; i < 1UL << order; i++)
		__free_page(page + i);
}

/*
 * The image of the last instance released, kept for the next one: see
 * ct_runtime_image_get().  Protected by ct_image_lock.
 */
static DEFINE_MUTEX(ct_image_lock);
static struct page *ct_image_spare;
static unsigned int ct_image_spare_order;

/*
 * The pages for an instance's image: the spare, if there is one, or new
 * ones.  Returns whether the text in them is the image's already.
 *
 * The text is the same for every instance, and nothing writes to it
 * (the runtime maps it read-only), so the released instance's copy is
 * reused without writing to it again.  That saves more than a copy
 * where the host is emulated: QEMU's TCG translates code once per
 * physical page, and a page written to is translated again, so a fresh
 * copy at each PREPARE made the runtime's first DETACH and ATTACH of
 * each orphan run from cold translations, inside the stall.
 */
static bool ct_runtime_image_get(struct ct_runtime *rt)
{
	scoped_guard(mutex, &ct_image_lock) {
		if (ct_image_spare && ct_image_spare_order == rt->image_order) {
			rt->image = ct_image_spare;
			ct_image_spare = NULL;
			return true;
		}
	}
	/* Not charged to the VMM: the next orphan's, whoever's, may reuse it. */
	rt->image = alloc_pages(GFP_KERNEL | __GFP_ZERO, rt->image_order);
	return false;
}

/* Keep a released instance's image for the next one, or free it. */
static void ct_runtime_image_put(struct ct_runtime *rt)
{
	if (!rt->incoming) {
		scoped_guard(mutex, &ct_image_lock) {
			if (!ct_image_spare) {
				ct_image_spare = rt->image;
				ct_image_spare_order = rt->image_order;
				return;
			}
		}
	}
	ct_runtime_free_pages(rt, rt->image, rt->image_order);
}

/**
 * ct_runtime_image_cache_free() - free the image kept for the next instance
 *
 * Context: module exit: no instance exists.
 */
void ct_runtime_image_cache_free(void)
{
	guard(mutex)(&ct_image_lock);
	if (ct_image_spare)
		__free_pages(ct_image_spare, ct_image_spare_order);
	ct_image_spare = NULL;
}

static int ct_runtime_map_image(struct ct_runtime *rt)
{
	const struct ctrt_header *h = (const void *)caretaker_rt_image;
	size_t file = caretaker_rt_image_end - caretaker_rt_image;
	unsigned long size, text, va;
	bool reused;
	u64 flags;
	void *img;
	int ret;

	if (file < sizeof(*h) || h->magic != CTRT_MAGIC ||
	    h->version != CTRT_ABI_VERSION ||
	    h->file_end - CTRT_BASE < file ||
	    h->image_end - CTRT_BASE > CTRT_IMAGE_MAX ||
	    h->text_end > h->rodata_end || h->rodata_end > h->image_end ||
	    h->file_end > h->image_end || h->entry >= h->text_end) {
		pr_err_ratelimited("the embedded runtime image is malformed\n");
		return -ENOEXEC;
	}
	text = h->text_end - CTRT_BASE;
	size = h->image_end - CTRT_BASE;
	rt->image_order = get_order(size);
	reused = ct_runtime_image_get(rt);
	if (!rt->image)
		return -ENOMEM;
	img = page_address(rt->image);
	/*
	 * The text pages only where they differ (never, but then a write
	 * costs little); the file may end inside them, the rest is zero.
	 * The data after them as the image has it, every time.
	 */
	if (!reused || memcmp(img, caretaker_rt_image, min(text, file)))
		memcpy(img, caretaker_rt_image, min(text, file));
	if (file > text)
		memcpy(img + text, caretaker_rt_image + text, file - text);
	memset(img + max(text, file), 0, (PAGE_SIZE << rt->image_order) - max(text, file));
	rt->entry = h->entry;

	for (va = CTRT_BASE; va < h->image_end; va += PAGE_SIZE) {
		if (va < h->text_end)
			flags = 0;			/* read-only, executable */
		else if (va < h->rodata_end)
			flags = CT_PTE_NX;		/* read-only */
		else
			flags = CT_PTE_RW | CT_PTE_NX;
		ret = ct_pgtable_map(&rt->pt, va, virt_to_phys(img + va - CTRT_BASE),
				     flags | CT_PTE_A | CT_PTE_D);
		if (ret)
			return ret;
	}
	return 0;
}

static void ct_runtime_free_cpu(struct ct_runtime *rt, struct ct_runtime_cpu *c)
{
	unsigned int r;

	for (r = 0; r < ARRAY_SIZE(ct_regions); r++)
		if (c->region[r])
			ct_runtime_free_pages(rt, virt_to_page(c->region[r]),
					      get_order(ct_region_size(rt, r)));
}

/* An empty instance for @nr_cpus CPUs, or an ERR_PTR() for sizes it cannot hold. */
static struct ct_runtime *ct_runtime_alloc(unsigned int nr_cpus, const u32 *cpus,
					   u32 xsave_size)
{
	struct ct_runtime *rt;
	unsigned int i;

	if (!nr_cpus || nr_cpus > CTRT_MAX_CPUS || !xsave_size ||
	    xsave_size > CTRT_XSAVE_MAX)
		return ERR_PTR(-EINVAL);
	rt = kzalloc(struct_size(rt, cpus, nr_cpus), GFP_KERNEL_ACCOUNT);
	if (!rt)
		return ERR_PTR(-ENOMEM);
	rt->nr_cpus = nr_cpus;
	rt->xsave_size = xsave_size;
	INIT_LIST_HEAD(&rt->pt.pages);
	for (i = 0; i < nr_cpus; i++) {
		rt->cpus[i].rt = rt;
		rt->cpus[i].index = i;
		rt->cpus[i].cpu = cpus[i];
	}
	return rt;
}

/* The regions the kernel reads and writes by name. */
static void ct_runtime_name_regions(struct ct_runtime_cpu *c)
{
	c->cb = c->region[0];
	c->vmcb = c->region[3];
	c->xsave = c->region[ARRAY_SIZE(ct_regions) - 1];
	c->cpuid = c->region[ARRAY_SIZE(ct_regions) - 2];
}

static int ct_runtime_map_cpu(struct ct_runtime *rt, struct ct_runtime_cpu *c)
{
	unsigned long base = CTRT_CPU_VA(c->index), size, off;
	unsigned int r;
	int ret;

	for (r = 0; r < ARRAY_SIZE(ct_regions); r++) {
		size = ct_region_size(rt, r);
		c->region[r] = (void *)__get_free_pages(GFP_KERNEL_ACCOUNT | __GFP_ZERO,
							get_order(size));
		if (!c->region[r])
			return -ENOMEM;
		c->region_pa[r] = virt_to_phys(c->region[r]);
		for (off = 0; off < size; off += PAGE_SIZE) {
			ret = ct_pgtable_map(&rt->pt, base + ct_regions[r].off + off,
					     c->region_pa[r] + off,
					     CT_PTE_RW | CT_PTE_NX | CT_PTE_A | CT_PTE_D);
			if (ret)
				return ret;
		}
	}
	ct_runtime_name_regions(c);

	c->cb->magic = CTRT_MAGIC;
	c->cb->version = CTRT_ABI_VERSION;
	c->cb->index = c->index;
	c->cb->cr3 = ct_pgtable_root_pa(&rt->pt);
	c->cb->vmcb_pa = ct_runtime_pa(c, CTRT_OFF_VMCB);
	c->cb->hostsave_pa = ct_runtime_pa(c, CTRT_OFF_HOSTSAVE);
	c->cb->hsave_pa = ct_runtime_pa(c, CTRT_OFF_HSAVE);
	/* Private permission maps: intercept every port and every MSR. */
	memset(c->region[6], 0xff, CTRT_MSRPM_SIZE);
	memset(c->region[7], 0xff, CTRT_IOPM_SIZE);
	return 0;
}

/**
 * ct_runtime_create() - a runtime instance for some CPUs, not parked yet
 * @nr_cpus: number of CPUs, at most CTRT_MAX_CPUS
 * @cpus: their Linux numbers
 * @xsave_size: bytes of the guest's XSAVE image (KVM_GET_XSAVE2's size)
 *
 * Context: process context, may sleep.
 * Return: the instance or an ERR_PTR(): -EINVAL for sizes the runtime's
 * layout cannot hold, -EOPNOTSUPP with 5-level paging, -ENOMEM.
 */
struct ct_runtime *ct_runtime_create(unsigned int nr_cpus, const u32 *cpus,
				     u32 xsave_size)
{
	/*
	 * The kernel half of every mm's top level is the same (x86-64
	 * preallocates it): the caller's serves as the kernel's.
	 */
	pgd_t *kpgd = current->active_mm->pgd;
	struct ct_runtime *rt;
	unsigned int i;
	int ret;

	/* The runtime's slot must be free in the kernel's top level. */
	if (pgtable_l5_enabled() || pgd_val(kpgd[CTRT_PML4_SLOT]))
		return ERR_PTR(-EOPNOTSUPP);

	rt = ct_runtime_alloc(nr_cpus, cpus, xsave_size);
	if (IS_ERR(rt))
		return rt;
	ret = ct_pgtable_init(&rt->pt, CT_PTE_RW);
	if (ret)
		goto err;
	ret = ct_runtime_map_image(rt);
	if (ret)
		goto err;
	/*
	 * The fast path drives the parked CPUs' own local APIC timers; in
	 * xAPIC mode through the APIC page, uncached.
	 */
	if (!x2apic_enabled()) {
		u64 base;

		rdmsrq(MSR_IA32_APICBASE, base);
		ret = ct_pgtable_map(&rt->pt, CTRT_APIC_VA, base & MSR_IA32_APICBASE_BASE,
				     CT_PTE_RW | CT_PTE_NX | CT_PTE_PCD | CT_PTE_PWT |
				     CT_PTE_A | CT_PTE_D);
		if (ret)
			goto err;
	}
	for (i = 0; i < nr_cpus; i++) {
		ret = ct_runtime_map_cpu(rt, &rt->cpus[i]);
		if (ret)
			goto err;
	}

	/* The bridge: the kernel's half of the top level, plus the runtime's slot. */
	rt->bridge = (u64 *)get_zeroed_page(GFP_KERNEL_ACCOUNT);
	ret = -ENOMEM;
	if (!rt->bridge)
		goto err;
	memcpy(rt->bridge + KERNEL_PGD_BOUNDARY, kpgd + KERNEL_PGD_BOUNDARY,
	       KERNEL_PGD_PTRS * sizeof(pgd_t));
	rt->bridge[CTRT_PML4_SLOT] = *ct_pgtable_top_entry(&rt->pt, CTRT_PML4_SLOT);
	return rt;
err:
	ct_runtime_destroy(rt);
	return ERR_PTR(ret);
}

/**
 * ct_runtime_adopt() - take over an instance the previous kernel left running
 * @nr_cpus: its number of CPUs
 * @cpus: this kernel's number of each, parked at boot (cpu_park_at_boot())
 * @xsave_size: bytes of each CPU's XSAVE region
 * @cr3: physical address of its page table's top level
 * @ranges: the pages it runs on, as ct_runtime_list_ranges() listed them
 *	in the previous kernel; those of other kinds are skipped
 * @nr_ranges: entries in @ranges
 *
 * Restores the pages from KHO (kho_restore_pages()) and rebuilds the
 * instance around them; the runtime itself is not touched, it runs on.
 * Each control block must be one this module can talk to (CTRT_MAGIC,
 * CTRT_ABI_VERSION) and name the page table it was given.
 *
 * Context: process context, may sleep.
 * Return: the instance, ERR_PTR(-EINVAL) if the description does not
 * hold together, -EPROTO for a control block of another version, or
 * -ENOMEM.  On failure the pages restored so far stay allocated: the
 * CPUs still run on them.
 */
struct ct_runtime *ct_runtime_adopt(unsigned int nr_cpus, const u32 *cpus, u32 xsave_size,
				    phys_addr_t cr3, const struct kvm_caretaker_range *ranges,
				    u32 nr_ranges)
{
	struct ct_runtime *rt;
	struct page *page;
	unsigned int i, r;
	u32 k;

	rt = ct_runtime_alloc(nr_cpus, cpus, xsave_size);
	if (IS_ERR(rt))
		return rt;
	rt->incoming = true;

	for (k = 0; k < nr_ranges; k++) {
		const struct kvm_caretaker_range *e = &ranges[k];
		unsigned long nr = e->nr_pages;

		if (e->kind != KVM_CARETAKER_RANGE_IMAGE && e->kind != KVM_CARETAKER_RANGE_CPU &&
		    e->kind != KVM_CARETAKER_RANGE_RT_TABLE)
			continue;
		if (!nr || !is_power_of_2(nr) || !PAGE_ALIGNED(e->phys))
			goto bad;
		i = e->index >> 8;
		r = e->index & 0xff;
		if (e->kind == KVM_CARETAKER_RANGE_CPU &&
		    (i >= nr_cpus || r >= ARRAY_SIZE(ct_regions) || rt->cpus[i].region[r] ||
		     nr != 1UL << get_order(ct_region_size(rt, r))))
			goto bad;
		if ((e->kind == KVM_CARETAKER_RANGE_IMAGE &&
		     (rt->image || nr > CTRT_IMAGE_MAX >> PAGE_SHIFT)) ||
		    (e->kind == KVM_CARETAKER_RANGE_RT_TABLE && nr != 1))
			goto bad;
		page = kho_restore_pages(e->phys, nr);
		if (!page)
			goto bad;
		if (e->kind == KVM_CARETAKER_RANGE_IMAGE) {
			rt->image = page;
			rt->image_order = ilog2(nr);
		} else if (e->kind == KVM_CARETAKER_RANGE_CPU) {
			rt->cpus[i].region[r] = page_address(page);
			rt->cpus[i].region_pa[r] = e->phys;
		} else {
			list_add_tail(&page->lru, &rt->pt.pages);
			rt->pt.nr_pages++;
			if (e->phys == cr3)
				rt->pt.root = page_address(page);
		}
	}
	if (!rt->image || !rt->pt.root)
		goto bad;

	for (i = 0; i < nr_cpus; i++) {
		struct ct_runtime_cpu *c = &rt->cpus[i];

		for (r = 0; r < ARRAY_SIZE(ct_regions); r++)
			if (!c->region[r])
				goto bad;
		ct_runtime_name_regions(c);
		c->parked = true;
		if (c->cb->magic != CTRT_MAGIC || c->cb->index != i || c->cb->cr3 != cr3)
			goto bad;
		if (c->cb->version != CTRT_ABI_VERSION) {
			pr_err_ratelimited("CPU %u runs a runtime of version %u, this module talks to version %u\n",
					   c->cpu, c->cb->version, CTRT_ABI_VERSION);
			kfree(rt);
			return ERR_PTR(-EPROTO);
		}
	}
	return rt;
bad:
	pr_err_ratelimited("the runtime the previous kernel left is not described consistently\n");
	kfree(rt);
	return ERR_PTR(-EINVAL);
}

/*
 * On the CPU being parked, from play_dead, interrupts off: switch to the
 * bridge page table and jump into the runtime, which loads its own.
 */
static void __noreturn ct_runtime_enter(void *arg)
{
	struct ct_runtime_cpu *c = arg;

	asm volatile("mov %0, %%cr3\n\t"
		     ANNOTATE_RETPOLINE_SAFE "\n\t"
		     "jmp *%1\n\t"
		     : : "r"(virt_to_phys(c->rt->bridge)), "r"(c->rt->entry),
			 "D"(CTRT_CPU_VA(c->index))
		     : "memory");
	unreachable();
}

/* Wait until @c's state is @want, or with @leave until it is no longer @want. */
static int ct_runtime_wait(struct ct_runtime_cpu *c, u32 want, bool leave, bool kick)
{
	u64 deadline = ktime_get_ns() + CT_RUNTIME_TIMEOUT_MS * NSEC_PER_MSEC;
	unsigned int i;
	u32 state;

	for (i = 0; ktime_get_ns() < deadline; i++) {
		state = READ_ONCE(c->cb->state);
		/* Halted is not started: that CPU is spent until INIT. */
		if (leave && state == CTRT_ST_HALTED)
			return -EIO;
		if (leave ? state != want : state == want)
			return 0;
		if (state == CTRT_ST_FAULT) {
			pr_err_ratelimited("runtime on CPU %u took exception %llu at %#llx (error %#llx, cr2 %#llx)\n",
					   c->cpu, c->cb->fault_vector, c->cb->fault_rip,
					   c->cb->fault_error, c->cb->fault_cr2);
			return -EIO;
		}
		/*
		 * The runtime sleeps in HLT or runs the guest: an NMI makes it
		 * look again.  Poll closely first, this is inside the stall.
		 */
		if (kick && state != CTRT_ST_OFF && !(i % 32))
			apic->send_IPI(c->cpu, NMI_VECTOR);
		if (i < 512)
			udelay(5);
		else
			usleep_range(500, 1000);
	}
	pr_err_ratelimited("runtime on CPU %u did not reach state %u (it is in %u)\n",
			   c->cpu, want, READ_ONCE(c->cb->state));
	return -ETIMEDOUT;
}

/**
 * ct_runtime_park() - take the instance's CPUs from Linux into the runtime
 * @rt: the instance
 *
 * Each CPU is offlined with cpu_park() and enters the runtime, which
 * sets up its own tables and waits, idle, for a guest.  On failure the
 * CPUs parked so far stay parked: ct_runtime_destroy() returns them.
 *
 * Context: process context, may sleep; not under cpus_read_lock().
 * Return: 0, cpu_park()'s error, or -ETIMEDOUT/-EIO if a CPU did not
 * arrive.
 */
int ct_runtime_park(struct ct_runtime *rt)
{
	unsigned int i;
	int ret;

	for (i = 0; i < rt->nr_cpus; i++) {
		struct ct_runtime_cpu *c = &rt->cpus[i];
		struct cpu_park_owner owner = { ct_runtime_enter, c };

		ret = cpu_park(c->cpu, &owner);
		if (ret)
			return ret;
		c->parked = true;
		ret = ct_runtime_wait(c, CTRT_ST_IDLE, false, false);
		if (ret)
			return ret;
	}
	return 0;
}

/**
 * ct_runtime_nmi() - send one NMI to a parked CPU
 * @c: the CPU, in the runtime
 *
 * Context: any context.
 */
void ct_runtime_nmi(struct ct_runtime_cpu *c)
{
	u32 state = READ_ONCE(c->cb->state);

	if (c->parked && state != CTRT_ST_OFF && state != CTRT_ST_HALTED)
		apic->send_IPI(c->cpu, NMI_VECTOR);
}

/**
 * ct_runtime_start() - let a parked CPU run its guest
 * @c: the CPU, idle in the runtime, its VMCB and context filled in
 *
 * Context: any context.
 */
void ct_runtime_start(struct ct_runtime_cpu *c)
{
	/* The control block's contents before the command (x86: TSO). */
	smp_wmb();
	WRITE_ONCE(c->cb->cmd, CTRT_CMD_RUN);
	apic->send_IPI(c->cpu, NMI_VECTOR);
}

/**
 * ct_runtime_wait_started() - wait until a started CPU runs its guest
 * @c: the CPU, after ct_runtime_start()
 *
 * An NMI that arrives between the runtime's look at its command and its
 * HLT only ends that HLT early, so the runtime is kicked again until it
 * answers.
 *
 * Context: process context, may sleep.
 * Return: 0, -EIO if the runtime faulted or is halted (it ran a guest and
 * stopped: only INIT takes that CPU back), -ETIMEDOUT.
 */
int ct_runtime_wait_started(struct ct_runtime_cpu *c)
{
	return ct_runtime_wait(c, CTRT_ST_IDLE, true, true);
}

/**
 * ct_runtime_stop() - stop a parked CPU's guest and halt the CPU
 * @c: the CPU
 *
 * The runtime leaves the guest at its next exit (an NMI forces one),
 * saves what only the CPU holds (XSAVE image, DR0-3, TSC_AUX) into its
 * area, turns SVM off and halts with GIF set, ready for INIT.
 *
 * Context: process context, may sleep.
 * Return: 0 once halted, -ETIMEDOUT or -EIO if the runtime did not answer.
 */
int ct_runtime_stop(struct ct_runtime_cpu *c)
{
	u32 state = READ_ONCE(c->cb->state);

	if (!c->parked || state == CTRT_ST_HALTED)
		return 0;
	if (state == CTRT_ST_OFF || state == CTRT_ST_FAULT)
		return -EIO;
	WRITE_ONCE(c->cb->cmd, CTRT_CMD_STOP);
	return ct_runtime_wait(c, CTRT_ST_HALTED, false, true);
}

/**
 * ct_runtime_destroy() - stop every CPU, give them back to Linux, free all
 * @rt: the instance, or NULL
 *
 * A CPU whose runtime does not answer stays parked, and its memory is
 * leaked on purpose: the CPU may still be using it.
 *
 * Context: process context, may sleep.
 * Return: true if a CPU stayed parked: the caller must then leak what
 * the runtime may still touch too (the nested page table, guest memory).
 */
bool ct_runtime_destroy(struct ct_runtime *rt)
{
	bool leak = false;
	unsigned int i;
	int ret;

	if (!rt)
		return false;
	for (i = 0; i < rt->nr_cpus; i++) {
		struct ct_runtime_cpu *c = &rt->cpus[i];

		if (!c->parked)
			continue;
		/* A runtime that faulted left GIF set: INIT still gets in. */
		if (ct_runtime_stop(c) && READ_ONCE(c->cb->state) != CTRT_ST_FAULT) {
			pr_err_ratelimited("CPU %u stays parked: its runtime does not answer\n",
					   c->cpu);
			leak = true;
			continue;
		}
		c->parked = false;
		ret = cpu_unpark(c->cpu);
		if (ret)
			pr_err_ratelimited("CPU %u could not be brought back online: %d\n",
					   c->cpu, ret);
	}
	if (leak)
		return true;
	for (i = 0; i < rt->nr_cpus; i++)
		ct_runtime_free_cpu(rt, &rt->cpus[i]);
	if (rt->image)
		ct_runtime_image_put(rt);
	free_page((unsigned long)rt->bridge);
	ct_pgtable_destroy(&rt->pt);
	kfree(rt);
	return false;
}
