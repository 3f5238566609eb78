// SPDX-License-Identifier: GPL-2.0-only
/*
 * The caretaker runtime: what a parked CPU runs instead of Linux.
 *
 * It sets up its own descriptor tables, waits for the kernel to hand it
 * a guest, and runs that guest with VMRUN.  CPUID and XSETBV it answers
 * itself, as KVM would (the fast path, when the kernel enables it); every
 * other guest exit but a physical NMI or interrupt blocks the guest until
 * the kernel stops it: the exit is kept in the VMCB, with RIP at the
 * intercepted instruction, for KVM to handle after ATTACH.
 *
 * Built with its own flags (no FPU or vector registers, no stack
 * protector, tracing or sanitizers), with kernel headers for types and
 * compiler helpers only, and linked on its own at CTRT_BASE; the build
 * checks that it refers to nothing outside itself.  Every global symbol
 * starts with ctrt_.
 */
#include <linux/compiler.h>
#include <linux/types.h>
#include <asm/msr-index.h>
#include <asm/processor-flags.h>
#include <uapi/asm/svm.h>

#include "apic.h"
#include "cpuid.h"
#include "rt.h"
#include "timer.h"

struct ctrt_tss {
	u32 reserved0;
	u64 rsp[3];
	u64 reserved1;
	u64 ist[7];
	u64 reserved2;
	unsigned short reserved3;
	unsigned short iomap_base;
} __packed;

struct ctrt_dtr {
	unsigned short limit;
	u64 base;
} __packed;

static inline u64 rt_rdmsr(u32 msr)
{
	u32 lo, hi;

	asm volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return lo | ((u64)hi << 32);
}

static inline void rt_wrmsr(u32 msr, u64 val)
{
	asm volatile("wrmsr" :: "c"(msr), "a"((u32)val),
			     "d"((u32)(val >> 32)) : "memory");
}

static inline u64 rt_rdtsc(void)
{
	u32 lo, hi;

	asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return lo | ((u64)hi << 32);
}

static inline void rt_stgi(void)
{
	asm volatile("stgi" ::: "memory");
}

static inline void rt_clgi(void)
{
	asm volatile("clgi" ::: "memory");
}

static inline void rt_vmsave(u64 pa)
{
	asm volatile("vmsave %%rax" :: "a"(pa) : "memory");
}

static inline void rt_vmload(u64 pa)
{
	asm volatile("vmload %%rax" :: "a"(pa) : "memory");
}

static inline u64 vmcb_read(struct ctrt_cpu *cb, unsigned int off)
{
	return READ_ONCE(*(u64 *)((char *)cb + CTRT_OFF_VMCB + off));
}

static inline void vmcb_write(struct ctrt_cpu *cb, unsigned int off, u64 val)
{
	WRITE_ONCE(*(u64 *)((char *)cb + CTRT_OFF_VMCB + off), val);
}

static inline u8 vmcb_read8(struct ctrt_cpu *cb, unsigned int off)
{
	return READ_ONCE(*((u8 *)cb + CTRT_OFF_VMCB + off));
}

static inline void *area(struct ctrt_cpu *cb, unsigned long off)
{
	return (char *)cb + off;
}

/* A descriptor for a 64-bit segment, or the low half of a system one. */
static u64 gdt_entry(u64 base, u32 limit, u32 type_flags)
{
	return (limit & 0xffffULL) | ((base & 0xffffffULL) << 16) |
	       ((u64)(type_flags & 0xf0ff) << 40) |
	       ((u64)((limit >> 16) & 0xf) << 48) |
	       (((base >> 24) & 0xffULL) << 56);
}

static void __cold ctrt_tables_init(struct ctrt_cpu *cb)
{
	u64 *gdt = area(cb, CTRT_OFF_GDT);
	u64 *idt = area(cb, CTRT_OFF_IDT);
	struct ctrt_tss *tss = area(cb, CTRT_OFF_GDT + CTRT_TSS_OFF);
	u64 tss_base = (u64)tss;
	struct ctrt_dtr gdtr, idtr;
	unsigned int i;

	for (i = 0; i < sizeof(*tss) / 8; i++)
		((u64 *)tss)[i] = 0;
	tss->ist[0] = (u64)area(cb, CTRT_OFF_NMI_STACK + CTRT_NMI_STACK_SIZE);
	tss->ist[1] = (u64)area(cb, CTRT_OFF_EXC_STACK + CTRT_EXC_STACK_SIZE);
	tss->iomap_base = sizeof(*tss);

	gdt[0] = 0;
	gdt[1] = gdt_entry(0, 0xfffff, 0xa09b);	/* code: L, P, DPL0, exec/read */
	gdt[2] = gdt_entry(0, 0xfffff, 0xc093);	/* data: P, DPL0, read/write */
	gdt[3] = gdt_entry(tss_base, sizeof(*tss) - 1, 0x0089); /* 64-bit TSS */
	gdt[4] = tss_base >> 32;

	for (i = 0; i < 256; i++) {
		u64 h = (u64)(ctrt_vectors + 16 * i);
		/*
		 * Not #MC: between the exits the fast path completes, TR is
		 * the guest's (ctrt_keeps_guest_context()) and an IST would
		 * come from the guest's TSS.  The runtime's stack is always
		 * good at CPL 0; only a #DF (that stack overflowing) needs
		 * one, and the NMI, taken only with the runtime's TR.
		 */
		u64 ist = i == 2 ? 1 : i == 8 ? 2 : 0;

		idt[2 * i] = (h & 0xffff) | ((u64)CTRT_SEL_CODE << 16) |
			     (ist << 32) | (0x8eULL << 40) |
			     (((h >> 16) & 0xffff) << 48);
		idt[2 * i + 1] = h >> 32;
	}

	gdtr.limit = 5 * 8 - 1;
	gdtr.base = (u64)gdt;
	idtr.limit = 256 * 16 - 1;
	idtr.base = (u64)idt;

	asm volatile("lgdt %0\n\t"
		"pushq %2\n\t"
		"leaq 1f(%%rip), %%rax\n\t"
		"pushq %%rax\n\t"
		"lretq\n"
		"1:\n\t"
		"movl %3, %%eax\n\t"
		"movl %%eax, %%ss\n\t"
		"movl %%eax, %%ds\n\t"
		"movl %%eax, %%es\n\t"
		"lidt %1\n\t"
		"movl %4, %%eax\n\t"
		"ltr %%ax\n\t"
		:: "m"(gdtr), "m"(idtr), "i"((u64)CTRT_SEL_CODE),
		   "i"(CTRT_SEL_DATA), "i"(CTRT_SEL_TSS)
		: "rax", "memory");
}

/*
 * Drop global TLB entries the kernel left behind: the runtime's own
 * mappings are not global, and nothing else may stay reachable.
 */
static void __cold ctrt_flush_global(void)
{
	unsigned long cr4;

	asm volatile("mov %%cr4, %0" : "=r"(cr4));
	if (cr4 & X86_CR4_PGE)
		asm volatile("mov %0, %%cr4" :: "r"(cr4 & ~X86_CR4_PGE) : "memory");
}

/* Sleep until the kernel's next NMI. */
static void ctrt_wait(struct ctrt_cpu *cb)
{
	WRITE_ONCE(cb->heartbeat, cb->heartbeat + 1);
	ctrt_idle_halt();
}

static void __cold ctrt_load_guest_context(struct ctrt_cpu *cb)
{
	u32 lo = (u32)cb->xcr0, hi = (u32)(cb->xcr0 >> 32);
	u64 *xstate_bv = area(cb, CTRT_OFF_XSAVE + 512);
	u64 bv = *xstate_bv;

	/*
	 * XRSTOR faults on XSTATE_BV bits outside XCR0: restore what XCR0
	 * enables and keep the rest of the image as it is.  XSAVE at the
	 * end rewrites only XCR0's bits of XSTATE_BV, so the image goes
	 * back to KVM whole.
	 */
	asm volatile("xsetbv" :: "c"(0), "a"(lo), "d"(hi) : "memory");
	*xstate_bv = bv & cb->xcr0;
	asm volatile("xrstor64 (%0)" :: "r"(area(cb, CTRT_OFF_XSAVE)),
			     "a"(lo), "d"(hi) : "memory");
	*xstate_bv = bv;
	asm volatile("mov %0, %%db0" :: "r"(cb->dr[0]));
	asm volatile("mov %0, %%db1" :: "r"(cb->dr[1]));
	asm volatile("mov %0, %%db2" :: "r"(cb->dr[2]));
	asm volatile("mov %0, %%db3" :: "r"(cb->dr[3]));
	if (cb->flags & CTRT_F_TSC_AUX)
		rt_wrmsr(MSR_TSC_AUX, cb->tsc_aux);
	if (cb->flags & CTRT_F_SPEC_CTRL)
		rt_wrmsr(MSR_IA32_SPEC_CTRL, cb->spec_ctrl);
}

static void __cold ctrt_save_guest_context(struct ctrt_cpu *cb)
{
	u32 lo = (u32)cb->xcr0, hi = (u32)(cb->xcr0 >> 32);
	unsigned long v;

	asm volatile("xsave64 (%0)" :: "r"(area(cb, CTRT_OFF_XSAVE)),
			     "a"(lo), "d"(hi) : "memory");
	asm volatile("mov %%db0, %0" : "=r"(v));
	cb->dr[0] = v;
	asm volatile("mov %%db1, %0" : "=r"(v));
	cb->dr[1] = v;
	asm volatile("mov %%db2, %0" : "=r"(v));
	cb->dr[2] = v;
	asm volatile("mov %%db3, %0" : "=r"(v));
	cb->dr[3] = v;
	if (cb->flags & CTRT_F_TSC_AUX)
		cb->tsc_aux = rt_rdmsr(MSR_TSC_AUX);
	if (cb->flags & CTRT_F_SPEC_CTRL)
		cb->spec_ctrl = rt_rdmsr(MSR_IA32_SPEC_CTRL);
}

static void __cold ctrt_block(struct ctrt_cpu *cb, u64 code)
{
	cb->blocked_code = code;
	cb->blocked_info1 = vmcb_read(cb, CTRT_VMCB_EXIT_INFO1);
	cb->blocked_info2 = vmcb_read(cb, CTRT_VMCB_EXIT_INFO2);
	cb->blocked_rip = vmcb_read(cb, CTRT_VMCB_RIP);
	cb->blocked_tsc = rt_rdtsc();
	barrier();
	WRITE_ONCE(cb->state, CTRT_ST_BLOCKED);
	while (READ_ONCE(cb->cmd) != CTRT_CMD_STOP)
		ctrt_wait(cb);
}

/*
 * The fast path: exits the runtime resolves itself, the way KVM's exit
 * handlers would, instead of blocking the guest until ATTACH.  Each
 * handler returns false to block instead: whenever KVM would do more
 * than the runtime can (inject #GP, single-step, decode), it is left to
 * KVM, which sees the exit as if it had just happened.
 */

/*
 * The length of the intercepted instruction, @len if it has no prefix,
 * else 0.  With next-RIP save the VMCB says; without it (test hosts
 * only, CTRT_F_FIXED_LEN) the unprefixed length is assumed.  Guest
 * memory is never read.
 */
static unsigned int ctrt_insn_len(struct ctrt_cpu *cb, unsigned int len)
{
	u64 rip = vmcb_read(cb, CTRT_VMCB_RIP);

	if (cb->flags & CTRT_F_NRIPS)
		return vmcb_read(cb, CTRT_VMCB_NEXT_RIP) - rip == len ? len : 0;
	return cb->flags & CTRT_F_FIXED_LEN ? len : 0;
}

/*
 * Can the instruction be completed by skipping it?  Not if the guest
 * single-steps (KVM raises the #DB).
 */
static bool ctrt_can_skip(struct ctrt_cpu *cb, unsigned int len)
{
	return !(vmcb_read(cb, CTRT_VMCB_RFLAGS) & X86_EFLAGS_TF) &&
	       ctrt_insn_len(cb, len) == len;
}

/* kvm_skip_emulated_instruction(): past it, and out of any shadow. */
static void ctrt_skip(struct ctrt_cpu *cb, unsigned int len)
{
	vmcb_write(cb, CTRT_VMCB_RIP, vmcb_read(cb, CTRT_VMCB_RIP) + len);
	vmcb_write(cb, CTRT_VMCB_INT_STATE, 0);
}

/* kvm_emulate_cpuid() */
static bool ctrt_cpuid(struct ctrt_cpu *cb)
{
	const struct ctrt_cpuid *t = area(cb, CTRT_OFF_CPUID);
	struct caretaker_cpuid_live live;
	u32 out[4];

	if ((t->flags & CTRT_CPUID_F_FAULT) && vmcb_read8(cb, CTRT_VMCB_CPL))
		return false;
	if (!ctrt_can_skip(cb, 2))
		return false;
	live.cr4 = vmcb_read(cb, CTRT_VMCB_CR4);
	live.xcr0 = cb->xcr0;
	caretaker_cpuid(t, &live, (u32)vmcb_read(cb, CTRT_VMCB_RAX),
			(u32)cb->gprs.r[1], out);
	vmcb_write(cb, CTRT_VMCB_RAX, out[0]);
	cb->gprs.r[3] = out[1];
	cb->gprs.r[1] = out[2];
	cb->gprs.r[2] = out[3];
	ctrt_skip(cb, 2);
	return true;
}

/* kvm_emulate_xsetbv(): the guest's XCR0 is this CPU's while it runs. */
static bool ctrt_xsetbv(struct ctrt_cpu *cb)
{
	const struct ctrt_cpuid *t = area(cb, CTRT_OFF_CPUID);
	u64 xcr0 = (u32)vmcb_read(cb, CTRT_VMCB_RAX) | (cb->gprs.r[2] << 32);

	if (vmcb_read8(cb, CTRT_VMCB_CPL) || (u32)cb->gprs.r[1] ||
	    !caretaker_xcr0_valid(t, xcr0) || !ctrt_can_skip(cb, 3))
		return false;
	cb->xcr0 = xcr0;
	asm volatile("xsetbv" :: "c"(0), "a"((u32)xcr0), "d"((u32)(xcr0 >> 32))
		     : "memory");
	ctrt_skip(cb, 3);
	return true;
}

/* ---- this CPU's own local APIC ---- */

#define PAPIC_TPR	0x080
#define PAPIC_EOI	0x0b0
#define PAPIC_SVR	0x0f0
#define PAPIC_SVR_ENABLE	BIT(8)
#define PAPIC_LVTT	0x320
#define PAPIC_TMICT	0x380
#define PAPIC_TMCCT	0x390
#define PAPIC_TDCR	0x3e0
#define PAPIC_LVT_MASKED	BIT(16)
#define PAPIC_LVTT_TSCDL	(2U << 17)

static u32 papic_read(struct ctrt_cpu *cb, u32 reg)
{
	if (cb->apic.flags & CTRT_APIC_HOST_X2APIC)
		return rt_rdmsr(0x800 + (reg >> 4));
	return READ_ONCE(*(u32 *)(CTRT_APIC_VA + reg));
}

static void papic_write(struct ctrt_cpu *cb, u32 reg, u32 val)
{
	if (cb->apic.flags & CTRT_APIC_HOST_X2APIC)
		rt_wrmsr(0x800 + (reg >> 4), val);
	else
		WRITE_ONCE(*(u32 *)(CTRT_APIC_VA + reg), val);
}

/*
 * Without a TSC-deadline timer, measure the APIC timer against the TSC
 * (1 ms): Linux's own calibration is not the runtime's to read.
 */
static void __cold ctrt_papic_init(struct ctrt_cpu *cb)
{
	struct ctrt_apic *a = &cb->apic;
	u64 t0;

	/*
	 * Linux soft-disabled the APIC as the CPU went offline, which masks
	 * every LVT entry: enable it (spurious vector 0xff), at priority 0.
	 * ctrt_halt() disables it again.
	 */
	a->host_svr = papic_read(cb, PAPIC_SVR);
	papic_write(cb, PAPIC_SVR, PAPIC_SVR_ENABLE | 0xff);
	papic_write(cb, PAPIC_TPR, 0);
	if (!a->tsc_khz || (a->flags & CTRT_APIC_HOST_TSCDL))
		return;
	papic_write(cb, PAPIC_TDCR, 0xb);	/* divide by 1 */
	papic_write(cb, PAPIC_LVTT, PAPIC_LVT_MASKED | CTRT_TIMER_VECTOR);
	papic_write(cb, PAPIC_TMICT, 0xffffffff);
	t0 = rt_rdtsc();
	while (rt_rdtsc() - t0 < a->tsc_khz)
		asm volatile("pause");
	a->host_timer_khz = 0xffffffff - papic_read(cb, PAPIC_TMCCT);
	papic_write(cb, PAPIC_TMICT, 0);
	if (a->host_timer_khz)
		caretaker_mult_shift(a->tsc_khz, a->host_timer_khz, &a->tsc_to_timer);
}

static void __cold ctrt_papic_rearm(struct ctrt_cpu *cb, u64 deadline)
{
	struct ctrt_apic *a = &cb->apic;

	a->armed = deadline;
	if (a->flags & CTRT_APIC_HOST_TSCDL) {
		papic_write(cb, PAPIC_LVTT, PAPIC_LVTT_TSCDL | CTRT_TIMER_VECTOR);
		rt_wrmsr(MSR_IA32_TSC_DEADLINE, deadline);
		return;
	}
	if (!deadline || !a->tsc_to_timer) {
		papic_write(cb, PAPIC_TMICT, 0);
		return;
	}
	/* Never before @deadline; past the counter's range, an early wake re-arms. */
	papic_write(cb, PAPIC_LVTT, CTRT_TIMER_VECTOR);
	papic_write(cb, PAPIC_TMICT,
		    caretaker_apic_oneshot_count(rt_rdtsc(), deadline, a->tsc_to_timer));
}

/* Have this CPU's timer interrupt it at host TSC @deadline (0: never). */
static __always_inline void ctrt_papic_arm(struct ctrt_cpu *cb, u64 deadline)
{
	if (cb->apic.armed != deadline)
		ctrt_papic_rearm(cb, deadline);
}

/*
 * Take the interrupts pending on this CPU (its timer, stray IPIs from
 * the host): GIF and IF open for one instruction; ctrt_trap() counts and
 * acknowledges them.
 */
static void ctrt_take_interrupts(void)
{
	asm volatile("stgi; sti; nop; cli; clgi" ::: "memory");
}

/* ---- the guest's local APIC ---- */

static u32 vmcb_read32(struct ctrt_cpu *cb, unsigned int off)
{
	return READ_ONCE(*(u32 *)((char *)cb + CTRT_OFF_VMCB + off));
}

static void vmcb_write32(struct ctrt_cpu *cb, unsigned int off, u32 val)
{
	WRITE_ONCE(*(u32 *)((char *)cb + CTRT_OFF_VMCB + off), val);
}

static unsigned int ctrt_lvtt_mode(const struct ctrt_apic *a)
{
	return (a->lvtt >> 17) & 3;
}

/* The TPR, with the guest's CR8 writes (V_TPR) folded in. */
static u8 ctrt_tpr(struct ctrt_cpu *cb)
{
	struct ctrt_apic *a = &cb->apic;
	u32 vtpr = vmcb_read32(cb, CTRT_VMCB_INT_CTL) & 0xf;

	if (vtpr != a->tpr >> 4)
		a->tpr = vtpr << 4;
	return a->tpr;
}

static void ctrt_set_tpr(struct ctrt_cpu *cb, u8 tpr)
{
	u32 ctl = vmcb_read32(cb, CTRT_VMCB_INT_CTL);

	cb->apic.tpr = tpr;
	vmcb_write32(cb, CTRT_VMCB_INT_CTL, (ctl & ~0xfU) | (tpr >> 4));
}

/* The timer's current count (TMCCT). */
static u32 ctrt_tmcct(const struct ctrt_apic *a)
{
	u64 now = rt_rdtsc();

	if (ctrt_lvtt_mode(a) == CTRT_LVTT_TSCDEADLINE || !a->deadline ||
	    (s64)(a->deadline - now) <= 0)
		return 0;
	return caretaker_apic_tsc_to_count(a->deadline - now, a->tdcr, a->bus_cycle_ns,
					   a->tsc_to_ns, a->tmict);
}

/* TMICT written, or the mode changed: start or stop the timer. */
static void ctrt_timer_start(struct ctrt_apic *a)
{
	u64 period;

	a->deadline = 0;
	a->period = 0;
	if (ctrt_lvtt_mode(a) == CTRT_LVTT_TSCDEADLINE || !a->tmict)
		return;
	if (ctrt_lvtt_mode(a) == CTRT_LVTT_PERIODIC) {
		period = caretaker_apic_period_tsc(a->tmict, a->tdcr, a->bus_cycle_ns,
						   a->min_period_ns, a->ns_to_tsc);
		a->period = period;
	} else {
		period = caretaker_apic_count_to_tsc(a->tmict, a->tdcr, a->bus_cycle_ns,
						     a->ns_to_tsc);
	}
	a->deadline = rt_rdtsc() + period;
}

static void ctrt_timer_fire(struct ctrt_cpu *cb, u64 now)
{
	struct ctrt_apic *a = &cb->apic;
	u64 late;

	a->fires++;
	late = now - a->deadline;
	if (late > a->max_late_tsc)
		a->max_late_tsc = late;
	caretaker_apic_lvt_fire(a->irr, a->lvtt);
	if (a->period) {
		/* Missed periods collapse into this one, as on an APIC. */
		a->deadline += a->period;
		if ((s64)(now - a->deadline) >= 0)
			a->deadline = now + a->period;
	} else {
		a->deadline = 0;
		if (ctrt_lvtt_mode(a) == CTRT_LVTT_TSCDEADLINE)
			a->tsc_deadline = 0;
	}
}

/* Has the guest's timer expired?  Then its vector goes into IRR. */
static __always_inline void ctrt_timer_check(struct ctrt_cpu *cb)
{
	u64 now = rt_rdtsc();

	if (cb->apic.deadline && (s64)(now - cb->apic.deadline) >= 0)
		ctrt_timer_fire(cb, now);
}

static void ctrt_vintr(struct ctrt_cpu *cb, bool on)
{
	u32 ctl = vmcb_read32(cb, CTRT_VMCB_INT_CTL);
	u32 icpt = vmcb_read32(cb, CTRT_VMCB_INTERCEPT_VINTR);

	if (on) {
		ctl |= CTRT_V_IRQ | CTRT_V_IGN_TPR | CTRT_V_INTR_PRIO;
		icpt |= BIT(CTRT_VINTR_BIT);
	} else {
		ctl &= ~(CTRT_V_IRQ | CTRT_V_IGN_TPR | CTRT_V_INTR_PRIO);
		icpt &= ~BIT(CTRT_VINTR_BIT);
	}
	vmcb_write32(cb, CTRT_VMCB_INT_CTL, ctl);
	vmcb_write32(cb, CTRT_VMCB_INTERCEPT_VINTR, icpt);
}

/*
 * Before VMRUN: the highest deliverable vector goes in if the guest can
 * take it now (RFLAGS.IF, no interrupt shadow, nothing else being
 * injected); if not, an interrupt window exit is asked for.
 */
static void ctrt_inject(struct ctrt_cpu *cb)
{
	struct ctrt_apic *a = &cb->apic;
	int vec;

	if (!(a->flags & CTRT_APIC_X2APIC))
		return;
	ctrt_timer_check(cb);
	vec = caretaker_apic_next_vector(a->irr, a->isr, ctrt_tpr(cb));
	if (vec < 0 || (vmcb_read32(cb, CTRT_VMCB_EVENT_INJ) & CTRT_EVTINJ_VALID)) {
		ctrt_vintr(cb, false);
		return;
	}
	if (!(vmcb_read(cb, CTRT_VMCB_RFLAGS) & X86_EFLAGS_IF) ||
	    (vmcb_read32(cb, CTRT_VMCB_INT_STATE) & CTRT_INT_SHADOW)) {
		ctrt_vintr(cb, true);
		return;
	}
	ctrt_vintr(cb, false);
	caretaker_apic_clear_vector(a->irr, vec);
	caretaker_apic_set_vector(a->isr, vec);
	vmcb_write32(cb, CTRT_VMCB_EVENT_INJ_ERR, 0);
	vmcb_write32(cb, CTRT_VMCB_EVENT_INJ, vec | CTRT_EVTINJ_TYPE_INTR | CTRT_EVTINJ_VALID);
	a->injected++;
}

/*
 * After an exit the guest resumes from: an event whose delivery the exit
 * interrupted goes in again, as KVM's svm_complete_interrupts() does.
 */
static void ctrt_reinject(struct ctrt_cpu *cb)
{
	u32 info = vmcb_read32(cb, CTRT_VMCB_EXIT_INT_INFO);

	if (!(info & CTRT_EVTINJ_VALID))
		return;
	vmcb_write32(cb, CTRT_VMCB_EVENT_INJ_ERR, vmcb_read32(cb, CTRT_VMCB_EXIT_INT_ERR));
	vmcb_write32(cb, CTRT_VMCB_EVENT_INJ, info);
}

static bool ctrt_tsc_deadline_write(struct ctrt_apic *a, u64 val)
{
	/* As KVM: ignored outside TSC-deadline mode. */
	if (ctrt_lvtt_mode(a) != CTRT_LVTT_TSCDEADLINE)
		return true;
	a->tsc_deadline = val;
	a->deadline = caretaker_tscdl_to_host(val, a->tsc_offset);
	return true;
}

/* x2APIC register @reg (MSR 0x800 + reg) read, as kvm_x2apic_msr_read(). */
static bool ctrt_x2apic_read(struct ctrt_cpu *cb, u32 reg, u64 *val)
{
	struct ctrt_apic *a = &cb->apic;

	switch (reg) {
	case 0x02:
		*val = a->id;
		break;
	case 0x03:
		*val = a->version;
		break;
	case 0x08:
		*val = ctrt_tpr(cb);
		break;
	case 0x0a:
		*val = caretaker_apic_ppr(ctrt_tpr(cb), caretaker_apic_highest_vector(a->isr));
		break;
	case 0x0d:
		*val = a->ldr;
		break;
	case 0x0f:
		*val = a->svr;
		break;
	case 0x10 ... 0x17:
		*val = a->isr[reg - 0x10];
		break;
	case 0x18 ... 0x1f:
		*val = a->tmr[reg - 0x18];
		break;
	case 0x20 ... 0x27:
		ctrt_timer_check(cb);
		*val = a->irr[reg - 0x20];
		break;
	case 0x28:
		*val = a->esr;
		break;
	case 0x2f:
		*val = a->lvt[0];
		break;
	case 0x32:
		*val = a->lvtt;
		break;
	case 0x33 ... 0x37:
		*val = a->lvt[reg - 0x32];
		break;
	case 0x38:
		*val = a->tmict;
		break;
	case 0x39:
		*val = ctrt_tmcct(a);
		break;
	case 0x3e:
		*val = a->tdcr;
		break;
	default:
		return false;
	}
	return true;
}

/* A write KVM would complete without more than the APIC's own state. */
static bool ctrt_x2apic_write(struct ctrt_cpu *cb, u32 reg, u64 val)
{
	struct ctrt_apic *a = &cb->apic;
	unsigned int mode;
	bool tscdl;
	int vec;

	if (reg != 0x30 && (val >> 32))
		return false;
	switch (reg) {
	case 0x08:			/* TPR */
		if (val > 0xff)
			return false;
		ctrt_set_tpr(cb, val);
		return true;
	case 0x0b:			/* EOI */
		if (val)
			return false;
		vec = caretaker_apic_highest_vector(a->isr);
		if (vec < 0)
			return true;
		/* Level-triggered or IOAPIC-routed: KVM must see it. */
		if (a->eoi_exit[vec >> 5] & BIT(vec & 31) || a->tmr[vec >> 5] & BIT(vec & 31))
			return false;
		caretaker_apic_clear_vector(a->isr, vec);
		return true;
	case 0x0f:			/* SVR: no software disable here */
		if (!(val & BIT(8)) || (val & ~0x13ffULL))
			return false;
		a->svr = val;
		return true;
	case 0x28:			/* ESR */
		if (val)
			return false;
		a->esr = 0;
		return true;
	case 0x30:			/* ICR: a fixed IPI to itself only */
		if ((val & 0xff) < 16 || (val & 0x700) || (val & BIT(11)) ||
		    !(((val >> 18) & 3) == 1 ||
		      (((val >> 18) & 3) == 0 && (val >> 32) == a->id)))
			return false;
		caretaker_apic_set_vector(a->irr, val & 0xff);
		return true;
	case 0x32:			/* LVT timer */
		mode = (val >> 17) & 3;
		if ((val & ~0x710ffULL) || mode == 3 ||
		    (mode == CTRT_LVTT_TSCDEADLINE && !(a->flags & CTRT_APIC_GUEST_TSCDL)))
			return false;
		tscdl = mode == CTRT_LVTT_TSCDEADLINE;
		if (tscdl != (ctrt_lvtt_mode(a) == CTRT_LVTT_TSCDEADLINE)) {
			a->tmict = 0;
			a->deadline = 0;
			a->period = 0;
			a->tsc_deadline = 0;
		}
		a->lvtt = val & ~BIT(12);	/* delivery status: read-only */
		return true;
	case 0x38:			/* TMICT */
		if (ctrt_lvtt_mode(a) == CTRT_LVTT_TSCDEADLINE)
			return true;
		a->tmict = val;
		ctrt_timer_start(a);
		return true;
	case 0x3e:			/* TDCR */
		a->tdcr = val & 0xb;
		return true;
	case 0x3f:			/* SELF IPI */
		if (val > 0xff || val < 16)
			return false;
		caretaker_apic_set_vector(a->irr, val);
		return true;
	}
	return false;
}

/* RDMSR/WRMSR of the documented safe set; everything else blocks. */
static bool ctrt_msr(struct ctrt_cpu *cb)
{
	struct ctrt_apic *a = &cb->apic;
	bool write = vmcb_read(cb, CTRT_VMCB_EXIT_INFO1) & 1;
	u32 msr = cb->gprs.r[1];
	u64 val = 0;
	bool ok;

	if (!ctrt_can_skip(cb, 2))
		return false;
	if (write)
		val = (u32)vmcb_read(cb, CTRT_VMCB_RAX) | (cb->gprs.r[2] << 32);
	if (msr >= 0x800 && msr <= 0x8ff) {
		if (!(a->flags & CTRT_APIC_X2APIC))
			return false;
		ok = write ? ctrt_x2apic_write(cb, msr - 0x800, val) :
			     ctrt_x2apic_read(cb, msr - 0x800, &val);
	} else if (msr == MSR_IA32_TSC_DEADLINE && (a->flags & CTRT_APIC_X2APIC) &&
		   (a->flags & CTRT_APIC_GUEST_TSCDL)) {
		ok = write ? ctrt_tsc_deadline_write(a, val) : (val = a->tsc_deadline, true);
	} else if (msr == MSR_IA32_APICBASE && !write) {
		val = a->apic_base;
		ok = true;
	} else if (msr == MSR_TSC_AUX && !write && (cb->flags & CTRT_F_TSC_AUX)) {
		val = cb->tsc_aux;
		ok = true;
	} else {
		ok = false;
	}
	if (!ok)
		return false;
	if (!write) {
		vmcb_write(cb, CTRT_VMCB_RAX, (u32)val);
		cb->gprs.r[2] = val >> 32;
	}
	ctrt_skip(cb, 2);
	return true;
}

/*
 * HLT: wait on this CPU until the guest has an interrupt to take (its
 * timer, a self-IPI), then go past the HLT.  With nothing that could
 * wake it, or IF=0, the exit blocks and KVM halts the vCPU after ATTACH.
 * A stop request while waiting leaves RIP at the HLT, for KVM to execute
 * again.
 */
enum ctrt_wake { CTRT_WOKEN, CTRT_STOPPED, CTRT_NEVER };

/* Halt this CPU with the guest until it has an interrupt to take. */
static enum ctrt_wake __cold ctrt_wait_interrupt(struct ctrt_cpu *cb)
{
	struct ctrt_apic *a = &cb->apic;

	for (;;) {
		ctrt_timer_check(cb);
		if (caretaker_apic_next_vector(a->irr, a->isr, ctrt_tpr(cb)) >= 0)
			return CTRT_WOKEN;
		if (!a->deadline)
			return CTRT_NEVER;
		if (READ_ONCE(cb->cmd) == CTRT_CMD_STOP)
			return CTRT_STOPPED;
		ctrt_papic_arm(cb, a->deadline);
		a->halts++;
		WRITE_ONCE(cb->heartbeat, cb->heartbeat + 1);
		ctrt_guest_halt();
	}
}

static bool ctrt_hlt(struct ctrt_cpu *cb)
{
	if (!(cb->apic.flags & CTRT_APIC_X2APIC) || !ctrt_can_skip(cb, 1) ||
	    !(vmcb_read(cb, CTRT_VMCB_RFLAGS) & X86_EFLAGS_IF))
		return false;
	switch (ctrt_wait_interrupt(cb)) {
	case CTRT_WOKEN:
		ctrt_skip(cb, 1);
		return true;
	case CTRT_STOPPED:
		return true;
	default:
		return false;
	}
}

static bool ctrt_fastpath(struct ctrt_cpu *cb, u64 code)
{
	if (!(cb->flags & CTRT_F_FASTPATH))
		return false;
	switch (code) {
	case SVM_EXIT_CPUID:
		return ctrt_cpuid(cb);
	case SVM_EXIT_XSETBV:
		return ctrt_xsetbv(cb);
	case SVM_EXIT_MSR:
		return ctrt_msr(cb);
	case SVM_EXIT_HLT:
		return ctrt_hlt(cb);
	case SVM_EXIT_PAUSE:
		return true;
	case SVM_EXIT_VINTR:
		/* The window is open: ctrt_inject() takes it from here. */
		ctrt_vintr(cb, false);
		return true;
	}
	return false;
}

/*
 * CR4 bits the runtime has no use for: it runs at CPL 0 on supervisor
 * pages only, none of them global, in long mode.  It takes the guest's
 * values for them, so that VMRUN and #VMEXIT leave them as they are:
 * where VMRUN is itself emulated (a nested host, QEMU's TCG) each change
 * to one of them is a TLB flush, twice per exit.
 */
#define CTRT_CR4_GUEST_OWNED \
	(X86_CR4_PSE | X86_CR4_PGE | X86_CR4_SMEP | X86_CR4_SMAP)

static void __cold ctrt_cr4_follow(u64 *host_cr4, u64 guest_cr4)
{
	*host_cr4 = (*host_cr4 & ~CTRT_CR4_GUEST_OWNED) |
		    (guest_cr4 & CTRT_CR4_GUEST_OWNED);
	asm volatile("mov %0, %%cr4" :: "r"(*host_cr4) : "memory");
}

/*
 * Exits that leave the guest's VMLOAD state (TR, FS, GS, the syscall
 * MSRs) in the CPU: completed here with GIF clear, by code that uses
 * none of it, and straight back to VMRUN, so neither the VMSAVE nor the
 * two VMLOADs KVM does around each VMRUN are needed.  Every other exit
 * gets the runtime's own state back first (ctrt_host_context()): its
 * handling opens GIF (an NMI on the guest's TR would take its IST stack
 * from the guest's TSS) or leaves ctrt_run().
 */
static __always_inline bool ctrt_keeps_guest_context(u64 code)
{
	return code == SVM_EXIT_CPUID || code == SVM_EXIT_MSR ||
	       code == SVM_EXIT_XSETBV || code == SVM_EXIT_PAUSE ||
	       code == SVM_EXIT_VINTR;
}

/* Guest's VMLOAD state to the VMCB, the runtime's back into the CPU. */
static __always_inline void ctrt_host_context(struct ctrt_cpu *cb, bool *guest)
{
	if (*guest) {
		rt_vmsave(cb->vmcb_pa);
		rt_vmload(cb->hostsave_pa);
		*guest = false;
	}
}

/*
 * Run the guest until the kernel asks to stop it.  What each exit runs
 * sits in one page with ctrt_vmrun (rt.lds): under TCG every other page
 * would cost a TLB refill per exit (the rarely used paths are __cold).
 */
static noinline __section(".text.hot") void ctrt_run(struct ctrt_cpu *cb)
{
	u8 *tlb_ctl = area(cb, CTRT_OFF_VMCB + CTRT_VMCB_TLB_CTL);
	bool guest = false;	/* the guest's VMLOAD state is in the CPU */
	u64 code, cr4;

	rt_wrmsr(MSR_VM_HSAVE_PA, cb->hsave_pa);
	if (cb->flags & CTRT_F_FASTPATH)
		ctrt_papic_init(cb);
	ctrt_load_guest_context(cb);
	cb->run_tsc = rt_rdtsc();

	if (cb->flags & CTRT_F_START_BLOCKED) {
		ctrt_block(cb, 0);
		return;
	}
	/* Halted under KVM (RIP past the HLT): halted here until woken. */
	if (cb->halted) {
		switch (ctrt_wait_interrupt(cb)) {
		case CTRT_WOKEN:
			cb->halted = 0;
			break;
		case CTRT_STOPPED:
			return;
		default:
			ctrt_block(cb, 0);
			return;
		}
	}

	asm volatile("mov %%cr4, %0" : "=r"(cr4));
	WRITE_ONCE(cb->state, CTRT_ST_RUNNING);
	for (;;) {
		if ((cr4 ^ vmcb_read(cb, CTRT_VMCB_CR4)) & CTRT_CR4_GUEST_OWNED)
			ctrt_cr4_follow(&cr4, vmcb_read(cb, CTRT_VMCB_CR4));
		if (READ_ONCE(cb->cmd) == CTRT_CMD_STOP) {
			ctrt_host_context(cb, &guest);
			return;
		}

		/*
		 * With the fast path, this CPU's interrupts (its timer, the
		 * host's IPIs) must end the guest's run: with V_INTR_MASKING
		 * they are masked in the guest by the host's RFLAGS.IF at
		 * VMRUN.  GIF is clear until VMRUN, and again after #VMEXIT,
		 * so none is taken here.  Without the fast path IF stays clear
		 * and they wait for Linux: nothing would acknowledge them.
		 */
		if (cb->flags & CTRT_F_FASTPATH) {
			ctrt_inject(cb);
			ctrt_papic_arm(cb, cb->apic.deadline);
			asm volatile("sti" ::: "memory");
		}
		if (!guest) {
			rt_vmload(cb->vmcb_pa);
			guest = true;
		}
		ctrt_vmrun(&cb->gprs, cb->vmcb_pa);
		asm volatile("cli" ::: "memory");
		if (cb->flags & CTRT_F_IBPB)
			rt_wrmsr(MSR_IA32_PRED_CMD, PRED_CMD_IBPB);

		cb->vmruns++;
		/* Only the first VMRUN flushes this ASID. */
		WRITE_ONCE(*tlb_ctl, 0);

		code = vmcb_read(cb, CTRT_VMCB_EXIT_CODE);
		if (!(cb->flags & CTRT_F_FASTPATH) || !ctrt_keeps_guest_context(code))
			ctrt_host_context(cb, &guest);
		cb->exits++;
		cb->exit_kinds[ctrt_exit_kind(code)]++;
		WRITE_ONCE(cb->heartbeat, cb->heartbeat + 1);

		switch (code) {
		case SVM_EXIT_NMI:
			/* Let the pending NMI in: the runtime's handler takes it. */
			rt_stgi();
			rt_clgi();
			ctrt_reinject(cb);
			break;
		case SVM_EXIT_INTR:
			/*
			 * The fast path arms this CPU's timer: take it (and any
			 * stray IPI) now.  Without it there is no such exit
			 * (IF was clear at VMRUN).
			 */
			if (cb->flags & CTRT_F_FASTPATH)
				ctrt_take_interrupts();
			ctrt_reinject(cb);
			break;
		default:
			if (ctrt_fastpath(cb, code)) {
				cb->handled_kinds[ctrt_exit_kind(code)]++;
				ctrt_reinject(cb);
				break;
			}
			ctrt_host_context(cb, &guest);
			ctrt_block(cb, code);
			return;
		}
	}
}

/* Give the CPU up: guest saved, SVM off, GIF=1 so that INIT gets in. */
static void __cold __noreturn ctrt_halt(struct ctrt_cpu *cb)
{
	if (cb->flags & CTRT_F_FASTPATH) {
		ctrt_papic_arm(cb, 0);
		papic_write(cb, PAPIC_SVR, cb->apic.host_svr);
	}
	rt_stgi();
	rt_wrmsr(MSR_EFER, rt_rdmsr(MSR_EFER) & ~EFER_SVME);
	cb->stop_tsc = rt_rdtsc();
	barrier();
	WRITE_ONCE(cb->state, CTRT_ST_HALTED);
	for (;;)
		asm volatile("cli; hlt" ::: "memory");
}

void __cold ctrt_main(struct ctrt_cpu *cb)
{
	ctrt_flush_global();
	ctrt_tables_init(cb);
	/* Linux turned SVM off on this CPU as it went offline; CLGI needs it. */
	rt_wrmsr(MSR_EFER, rt_rdmsr(MSR_EFER) | EFER_SVME);
	rt_clgi();
	/* The runtime's own VMLOAD state, TR above all, for ctrt_run(). */
	rt_vmsave(cb->hostsave_pa);
	WRITE_ONCE(cb->state, CTRT_ST_IDLE);

	for (;;) {
		u32 cmd = READ_ONCE(cb->cmd);

		if (cmd == CTRT_CMD_RUN) {
			ctrt_run(cb);
			ctrt_save_guest_context(cb);
			break;
		}
		if (cmd == CTRT_CMD_STOP)
			break;
		ctrt_wait(cb);
	}
	ctrt_halt(cb);
}

/*
 * Frame pushed by ctrt_trap_common: 15 registers (r15 first), the vector,
 * the error code, then what the CPU pushed (RIP, CS, RFLAGS, RSP, SS).
 */
#define FRAME_VECTOR	15
#define FRAME_ERROR	16
#define FRAME_RIP	17

void ctrt_trap(u64 *frame)
{
	struct ctrt_cpu *cb = (struct ctrt_cpu *)((u64)frame & ~(CTRT_CPU_SIZE - 1));
	u64 vector = frame[FRAME_VECTOR];
	unsigned long cr2;
	bool entered;

	if (vector == 2) {
		u64 rip = frame[FRAME_RIP];

		cb->nmis++;
		if (rip == (u64)ctrt_idle_hlt)
			frame[FRAME_RIP] = rip + 1;
		else if (rip == (u64)ctrt_guest_sti || rip == (u64)ctrt_guest_hlt)
			frame[FRAME_RIP] = (u64)ctrt_guest_hlt + 1;
		return;
	}
	if (vector >= 32) {
		/*
		 * This CPU's timer, or an IPI from the host (a broadcast,
		 * REBOOT_VECTOR at kexec): acknowledged and otherwise
		 * ignored.  Not the spurious vector: that one is not in ISR.
		 */
		if (vector == CTRT_TIMER_VECTOR)
			cb->apic.armed = 0;	/* fired: arm it again */
		else
			cb->strays++;
		if (vector != 0xff && (cb->flags & CTRT_F_FASTPATH))
			papic_write(cb, PAPIC_EOI, 0);
		return;
	}

	/* An exception in the runtime itself: record it and stop here. */
	entered = READ_ONCE(cb->state) != CTRT_ST_OFF;
	asm volatile("mov %%cr2, %0" : "=r"(cr2));
	cb->fault_vector = vector;
	cb->fault_error = frame[FRAME_ERROR];
	cb->fault_rip = frame[FRAME_RIP];
	cb->fault_cr2 = cr2;
	barrier();
	WRITE_ONCE(cb->state, CTRT_ST_FAULT);
	/*
	 * Let INIT in, so that the kernel can still take the CPU back; with
	 * the runtime's own TR first, for an NMI that comes with GIF.
	 */
	if (rt_rdmsr(MSR_EFER) & EFER_SVME) {
		if (entered)	/* its VMSAVE area holds its own state */
			rt_vmload(cb->hostsave_pa);
		rt_stgi();
	}
	for (;;)
		asm volatile("cli; hlt" ::: "memory");
}

const struct ctrt_header ctrt_header __section(".ctrt.header") __used = {
	.magic = CTRT_MAGIC,
	.version = CTRT_ABI_VERSION,
	.entry = (u64)ctrt_entry,
	.text_end = (u64)ctrt_text_end,
	.rodata_end = (u64)ctrt_rodata_end,
	.file_end = (u64)ctrt_file_end,
	.image_end = (u64)ctrt_image_end,
};
