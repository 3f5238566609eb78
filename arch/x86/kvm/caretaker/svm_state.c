// SPDX-License-Identifier: GPL-2.0-only
/*
 * A vCPU's state, as KVM's save/restore ioctls carry it, in and out of
 * the runtime's VMCB.
 *
 * The state comes from kvm_x86_vcpu_get_state() (what KVM_GET_REGS,
 * _SREGS2, _XSAVE2, _XCRS, _DEBUGREGS, _VCPU_EVENTS, _LAPIC, _MP_STATE,
 * _MSRS and the TSC offset attribute return) and goes back through
 * kvm_x86_vcpu_set_state(): never through KVM's own VMCB, which carries
 * KVM's artefacts.
 */
#include <linux/kvm_host.h>
#include <asm/apic.h>
#include <asm/apicdef.h>
#include <asm/msr-index.h>
#include <asm/svm.h>

#include "apic.h"
#include "msrs.h"
#include "svm_encode.h"
#include "svm_state.h"
#include "timer.h"

/**
 * DOC: the guest under the runtime
 *
 * The runtime's VMCB intercepts every port, every MSR but the ones its
 * VMLOAD/VMSAVE area holds (FS and GS base, KERNEL_GS_BASE, STAR, LSTAR,
 * CSTAR, SYSCALL_MASK), CPUID, HLT, XSETBV, INVD, WBINVD, MONITOR/MWAIT,
 * every SVM instruction, task switches, SMI, INIT, shutdown and #MC; the
 * guest's own page tables run under a nested page table of its pinned
 * memory, with ASID 1, flushed on the first VMRUN.  Physical interrupts
 * stay masked in the guest (V_INTR_MASKING with the runtime's IF=0);
 * NMIs exit, and the runtime takes them itself.  IRET is intercepted
 * while the guest's NMIs are masked, so that their unmasking is KVM's to
 * see.  An event KVM was delivering at DETACH (an exception, an NMI or
 * an interrupt) is injected on the first VMRUN; an event whose delivery
 * an exit interrupted is handed back to KVM as injected.
 */

static bool fastpath = true;
module_param(fastpath, bool, 0644);
MODULE_PARM_DESC(fastpath,
		 "Let the runtime answer CPUID and XSETBV itself (default: on); off, every exit blocks");

static bool fixed_insn_len;
module_param(fixed_insn_len, bool, 0644);
MODULE_PARM_DESC(fixed_insn_len,
		 "Test hosts only: without next-RIP save, assume the unprefixed lengths of the instructions the runtime completes (default: off, those exits block)");

static const u32 ct_vmload_msrs[] = {
	MSR_FS_BASE, MSR_GS_BASE, MSR_KERNEL_GS_BASE,
	MSR_STAR, MSR_LSTAR, MSR_CSTAR, MSR_SYSCALL_MASK,
};

static void ct_set_msr(struct kvm_x86_vcpu_state *s, u32 index, u64 data)
{
	struct kvm_msr_entry *e = ct_find_msr(s, index);

	if (e)
		e->data = data;
}

static u32 ct_lapic_reg(const struct kvm_x86_vcpu_state *s, u32 off)
{
	return *(const u32 *)(s->lapic.regs + off);
}

static void ct_lapic_set(struct kvm_x86_vcpu_state *s, u32 off, u32 val)
{
	*(u32 *)(s->lapic.regs + off) = val;
}

/*
 * The guest's local APIC into the runtime's, for the fast path: x2APIC
 * mode only (xAPIC accesses are MMIO, which blocks).  The timer becomes a
 * host-TSC deadline: the remaining count (TMCCT, as KVM_GET_LAPIC computed
 * it) from now, or the TSC-deadline MSR less the TSC offset.
 */
static void ct_apic_load(struct ctrt_apic *a, const struct kvm_x86_vcpu_state *s)
{
	u32 i, mode, count;
	u64 mult;

	if (!(a->flags & CTRT_APIC_IN_KERNEL))
		return;
	a->apic_base = s->sregs2.apic_base;
	if ((a->apic_base & (X2APIC_ENABLE | MSR_IA32_APICBASE_ENABLE)) ==
	    (X2APIC_ENABLE | MSR_IA32_APICBASE_ENABLE))
		a->flags |= CTRT_APIC_X2APIC;
	if (x2apic_enabled())
		a->flags |= CTRT_APIC_HOST_X2APIC;
	if (boot_cpu_has(X86_FEATURE_TSC_DEADLINE_TIMER))
		a->flags |= CTRT_APIC_HOST_TSCDL;
	a->tsc_khz = tsc_khz;
	if (!caretaker_mult_shift(NSEC_PER_MSEC, tsc_khz, &mult))
		a->ns_to_tsc = mult;
	if (!caretaker_mult_shift(tsc_khz, NSEC_PER_MSEC, &mult))
		a->tsc_to_ns = mult;
	a->tsc_offset = s->tsc_offset;

	a->version = ct_lapic_reg(s, APIC_LVR);
	a->ldr = ct_lapic_reg(s, APIC_LDR);
	a->svr = ct_lapic_reg(s, APIC_SPIV);
	a->tpr = ct_lapic_reg(s, APIC_TASKPRI) & 0xff;
	a->lvtt = ct_lapic_reg(s, APIC_LVTT);
	a->tdcr = ct_lapic_reg(s, APIC_TDCR);
	a->tmict = ct_lapic_reg(s, APIC_TMICT);
	a->esr = ct_lapic_reg(s, APIC_ESR);
	a->lvt[0] = ct_lapic_reg(s, APIC_LVTCMCI);
	for (i = 1; i < ARRAY_SIZE(a->lvt); i++)
		a->lvt[i] = ct_lapic_reg(s, APIC_LVTTHMR + (i - 1) * 0x10);
	for (i = 0; i < 8; i++) {
		a->irr[i] = ct_lapic_reg(s, APIC_IRR + i * 0x10);
		a->isr[i] = ct_lapic_reg(s, APIC_ISR + i * 0x10);
		a->tmr[i] = ct_lapic_reg(s, APIC_TMR + i * 0x10);
	}

	mode = (a->lvtt >> 17) & 3;
	a->tsc_deadline = ct_msr(s, MSR_IA32_TSC_DEADLINE, 0);
	/* An expiry KVM counted but did not deliver: as KVM would deliver it. */
	if (a->flags & CTRT_APIC_TIMER_PENDING) {
		caretaker_apic_lvt_fire(a->irr, a->lvtt);
		if (mode == CTRT_LVTT_TSCDEADLINE)
			a->tsc_deadline = 0;
	}
	if (mode == CTRT_LVTT_TSCDEADLINE) {
		a->deadline = caretaker_tscdl_to_host(a->tsc_deadline, a->tsc_offset);
		return;
	}
	/*
	 * TMCCT 0: a one-shot timer is over, unless KVM's timer was still
	 * armed when DETACH stopped it (its expiry was due but had not run);
	 * a periodic one is at the end of a period.  Those expire now.
	 */
	count = ct_lapic_reg(s, APIC_TMCCT);
	if (!a->tmict || (!count && mode == CTRT_LVTT_ONESHOT &&
			  !(a->flags & CTRT_APIC_TIMER_ARMED)))
		return;
	a->deadline = rdtsc();
	a->deadline += caretaker_apic_count_to_tsc(count, a->tdcr, a->bus_cycle_ns, a->ns_to_tsc);
	if (mode == CTRT_LVTT_PERIODIC)
		a->period = caretaker_apic_period_tsc(a->tmict, a->tdcr, a->bus_cycle_ns,
						      a->min_period_ns, a->ns_to_tsc);
}

/* ... and back, at the time the runtime stopped. */
static void ct_apic_store(const struct ctrt_cpu *cb, u8 tpr, struct kvm_x86_vcpu_state *s)
{
	const struct ctrt_apic *a = &cb->apic;
	u32 i, count = 0;

	if (!(cb->flags & CTRT_F_FASTPATH) || !(a->flags & CTRT_APIC_X2APIC))
		return;
	/* CR8 writes reach V_TPR only: the low nibble is the MSR's. */
	ct_lapic_set(s, APIC_TASKPRI, (a->tpr >> 4) == tpr ? a->tpr : (u32)tpr << 4);
	ct_lapic_set(s, APIC_SPIV, a->svr);
	ct_lapic_set(s, APIC_LVTT, a->lvtt);
	ct_lapic_set(s, APIC_TDCR, a->tdcr);
	ct_lapic_set(s, APIC_TMICT, a->tmict);
	ct_lapic_set(s, APIC_ESR, a->esr);
	for (i = 0; i < 8; i++) {
		ct_lapic_set(s, APIC_IRR + i * 0x10, a->irr[i]);
		ct_lapic_set(s, APIC_ISR + i * 0x10, a->isr[i]);
	}
	/* KVM_SET_LAPIC starts the timer from TMCCT, the count left. */
	if (((a->lvtt >> 17) & 3) != CTRT_LVTT_TSCDEADLINE && a->deadline && a->tmict) {
		u64 left = (s64)(a->deadline - cb->stop_tsc) > 0 ? a->deadline - cb->stop_tsc : 0;

		count = max(1U, caretaker_apic_tsc_to_count(left, a->tdcr, a->bus_cycle_ns,
							    a->tsc_to_ns, a->tmict));
	}
	ct_lapic_set(s, APIC_TMCCT, count);
	ct_set_msr(s, MSR_IA32_TSC_DEADLINE, a->tsc_deadline);
}

static void ct_intercept(struct vmcb_control_area *ctl, unsigned int bit)
{
	ctl->intercepts[bit / 32] |= BIT(bit % 32);
}

static u64 ct_xcr0(const struct kvm_x86_vcpu_state *s)
{
	u32 i;

	for (i = 0; i < s->xcrs.nr_xcrs && i < KVM_MAX_XCRS; i++)
		if (s->xcrs.xcrs[i].xcr == 0)
			return s->xcrs.xcrs[i].value;
	return XFEATURE_MASK_FP;
}

/**
 * ct_svm_load() - make a parked CPU's VMCB and context the guest's
 * @c: the CPU, idle in the runtime
 * @s: the vCPU's state, taken with the vCPU stopped
 * @ncr3: the nested page table of the guest's memory
 *
 * Context: any context; the runtime must not be running a guest on @c.
 * Return: 0, or -EINVAL if the XSAVE image does not fit.
 */
int ct_svm_load(struct ct_runtime_cpu *c, const struct kvm_x86_vcpu_state *s,
		phys_addr_t ncr3)
{
	struct vmcb *vmcb = c->vmcb;
	struct vmcb_control_area *ctl = &vmcb->control;
	struct vmcb_save_area *save = &vmcb->save;
	const struct kvm_sregs2 *sr = &s->sregs2;
	struct ctrt_cpu *cb = c->cb;
	static const unsigned int intercepts[] = {
		INTERCEPT_INTR, INTERCEPT_NMI, INTERCEPT_SMI, INTERCEPT_INIT,
		INTERCEPT_CPUID, INTERCEPT_RSM, INTERCEPT_INVD, INTERCEPT_HLT,
		INTERCEPT_INVLPGA, INTERCEPT_IOIO_PROT, INTERCEPT_MSR_PROT,
		INTERCEPT_TASK_SWITCH, INTERCEPT_SHUTDOWN, INTERCEPT_VMRUN,
		INTERCEPT_VMMCALL, INTERCEPT_VMLOAD, INTERCEPT_VMSAVE,
		INTERCEPT_STGI, INTERCEPT_CLGI, INTERCEPT_SKINIT,
		INTERCEPT_ICEBP, INTERCEPT_WBINVD, INTERCEPT_MONITOR,
		INTERCEPT_MWAIT, INTERCEPT_MWAIT_COND, INTERCEPT_XSETBV,
		INTERCEPT_RDPRU,
	};
	unsigned int i;

	if (!s->xsave_size || s->xsave_size > c->rt->xsave_size)
		return -EINVAL;

	memset(vmcb, 0, PAGE_SIZE);
	for (i = 0; i < ARRAY_SIZE(intercepts); i++)
		ct_intercept(ctl, intercepts[i]);
	ct_intercept(ctl, INTERCEPT_EXCEPTION_OFFSET + MC_VECTOR);
	if (s->events.nmi.masked)
		ct_intercept(ctl, INTERCEPT_IRET);
	for (i = 0; i < ARRAY_SIZE(ct_vmload_msrs); i++)
		ct_msrpm_clear(c->region[6], ct_vmload_msrs[i]);
	ctl->iopm_base_pa = ct_runtime_pa(c, CTRT_OFF_IOPM);
	ctl->msrpm_base_pa = ct_runtime_pa(c, CTRT_OFF_MSRPM);
	ctl->tsc_offset = s->tsc_offset;
	ctl->asid = 1;
	ctl->tlb_ctl = TLB_CONTROL_FLUSH_ALL_ASID;
	ctl->int_ctl = V_INTR_MASKING_MASK | (sr->cr8 & V_TPR_MASK);
	ctl->int_state = s->events.interrupt.shadow ? SVM_INTERRUPT_SHADOW_MASK : 0;
	ctl->misc_ctl = SVM_MISC_ENABLE_NP;
	ctl->nested_cr3 = ncr3;
	ctl->event_inj = ct_event_inj(&s->events, &ctl->event_inj_err);
	ctl->clean = 0;

	ct_seg_to_vmcb(&save->es, &sr->es);
	ct_seg_to_vmcb(&save->cs, &sr->cs);
	ct_seg_to_vmcb(&save->ss, &sr->ss);
	ct_seg_to_vmcb(&save->ds, &sr->ds);
	ct_seg_to_vmcb(&save->fs, &sr->fs);
	ct_seg_to_vmcb(&save->gs, &sr->gs);
	ct_seg_to_vmcb(&save->ldtr, &sr->ldt);
	ct_seg_to_vmcb(&save->tr, &sr->tr);
	save->gdtr.base = sr->gdt.base;
	save->gdtr.limit = sr->gdt.limit;
	save->idtr.base = sr->idt.base;
	save->idtr.limit = sr->idt.limit;
	save->cpl = sr->ss.dpl & 3;
	/* VMRUN requires EFER.SVME in the guest's EFER; the guest's own is 0. */
	save->efer = sr->efer | EFER_SVME;
	save->cr0 = sr->cr0;
	save->cr2 = sr->cr2;
	save->cr3 = sr->cr3;
	save->cr4 = sr->cr4;
	save->dr6 = s->debugregs.dr6;
	save->dr7 = s->debugregs.dr7;
	save->rflags = s->regs.rflags;
	save->rip = s->regs.rip;
	save->rsp = s->regs.rsp;
	save->rax = s->regs.rax;
	save->kernel_gs_base = ct_msr(s, MSR_KERNEL_GS_BASE, 0);
	save->star = ct_msr(s, MSR_STAR, 0);
	save->lstar = ct_msr(s, MSR_LSTAR, 0);
	save->cstar = ct_msr(s, MSR_CSTAR, 0);
	save->sfmask = ct_msr(s, MSR_SYSCALL_MASK, 0);
	save->sysenter_cs = ct_msr(s, MSR_IA32_SYSENTER_CS, 0);
	save->sysenter_esp = ct_msr(s, MSR_IA32_SYSENTER_ESP, 0);
	save->sysenter_eip = ct_msr(s, MSR_IA32_SYSENTER_EIP, 0);
	save->g_pat = ct_msr(s, MSR_IA32_CR_PAT, MSR_IA32_CR_PAT_DEFAULT);

	cb->gprs.r[1] = s->regs.rcx;
	cb->gprs.r[2] = s->regs.rdx;
	cb->gprs.r[3] = s->regs.rbx;
	cb->gprs.r[5] = s->regs.rbp;
	cb->gprs.r[6] = s->regs.rsi;
	cb->gprs.r[7] = s->regs.rdi;
	cb->gprs.r[8] = s->regs.r8;
	cb->gprs.r[9] = s->regs.r9;
	cb->gprs.r[10] = s->regs.r10;
	cb->gprs.r[11] = s->regs.r11;
	cb->gprs.r[12] = s->regs.r12;
	cb->gprs.r[13] = s->regs.r13;
	cb->gprs.r[14] = s->regs.r14;
	cb->gprs.r[15] = s->regs.r15;

	memset(c->xsave, 0, c->rt->xsave_size);
	memcpy(c->xsave, s->xsave, s->xsave_size);
	cb->xcr0 = ct_xcr0(s);
	for (i = 0; i < 4; i++)
		cb->dr[i] = s->debugregs.db[i];

	cb->flags = 0;
	if (boot_cpu_has(X86_FEATURE_IBPB))
		cb->flags |= CTRT_F_IBPB;
	if (ct_find_msr(s, MSR_TSC_AUX)) {
		cb->flags |= CTRT_F_TSC_AUX;
		cb->tsc_aux = ct_msr(s, MSR_TSC_AUX, 0);
	}
	if (boot_cpu_has(X86_FEATURE_MSR_SPEC_CTRL) && ct_find_msr(s, MSR_IA32_SPEC_CTRL)) {
		cb->flags |= CTRT_F_SPEC_CTRL;
		cb->spec_ctrl = ct_msr(s, MSR_IA32_SPEC_CTRL, 0);
	}
	/*
	 * The fast path completes instructions, so it needs their lengths:
	 * from next-RIP save, or (test hosts) from the fixed_insn_len
	 * assumption.
	 */
	if (READ_ONCE(fastpath)) {
		if (boot_cpu_has(X86_FEATURE_NRIPS))
			cb->flags |= CTRT_F_FASTPATH | CTRT_F_NRIPS;
		else if (READ_ONCE(fixed_insn_len))
			cb->flags |= CTRT_F_FASTPATH | CTRT_F_FIXED_LEN;
	}
	if (cb->flags & CTRT_F_FASTPATH)
		ct_apic_load(&cb->apic, s);
	else
		cb->apic.flags = 0;
	/*
	 * A halted vCPU waits in the runtime for its next interrupt when the
	 * runtime has its APIC; any other state than running waits for KVM.
	 */
	cb->halted = 0;
	if (s->mp_state.mp_state == KVM_MP_STATE_HALTED &&
	    (cb->apic.flags & CTRT_APIC_X2APIC))
		cb->halted = 1;
	else if (s->mp_state.mp_state != KVM_MP_STATE_RUNNABLE)
		cb->flags |= CTRT_F_START_BLOCKED;
	return 0;
}

static void ct_set_xcr0(struct kvm_x86_vcpu_state *s, u64 xcr0)
{
	u32 i;

	for (i = 0; i < s->xcrs.nr_xcrs && i < KVM_MAX_XCRS; i++)
		if (s->xcrs.xcrs[i].xcr == 0)
			s->xcrs.xcrs[i].value = xcr0;
}

/**
 * ct_svm_store() - read the guest back after the runtime stopped it
 * @c: the CPU, halted by ct_runtime_stop()
 * @s: the state taken at DETACH; updated with what the guest changed
 *
 * What the guest cannot have changed (intercepted MSRs, the local APIC
 * but for the TPR, the TSC offset, the MP state) stays as taken at
 * DETACH; XCR0 is the runtime's (the fast path handles XSETBV).  RIP is
 * at the instruction whose exit the guest waits on, if any, so that KVM
 * re-executes it.
 *
 * Context: any context.
 */
void ct_svm_store(struct ct_runtime_cpu *c, struct kvm_x86_vcpu_state *s)
{
	struct vmcb *vmcb = c->vmcb;
	struct vmcb_control_area *ctl = &vmcb->control;
	struct vmcb_save_area *save = &vmcb->save;
	struct kvm_sregs2 *sr = &s->sregs2;
	struct ctrt_cpu *cb = c->cb;
	u8 tpr = ctl->int_ctl & V_TPR_MASK;
	unsigned int i;

	/*
	 * The APIC first: a halted guest may have taken a tick before any
	 * VMRUN.  TPR from V_TPR (CR8) unless the runtime's APIC, which also
	 * has the MSR's low nibble, says more.
	 */
	if (READ_ONCE(cb->vmruns))
		ct_lapic_set(s, APIC_TASKPRI, (u32)tpr << 4);
	ct_apic_store(cb, tpr, s);
	/* Woken in the runtime: running now, as far as KVM is concerned. */
	if (s->mp_state.mp_state == KVM_MP_STATE_HALTED && !cb->halted &&
	    (cb->apic.flags & CTRT_APIC_X2APIC))
		s->mp_state.mp_state = KVM_MP_STATE_RUNNABLE;
	if (!READ_ONCE(cb->vmruns))
		return;

	s->regs.rax = save->rax;
	s->regs.rsp = save->rsp;
	s->regs.rip = save->rip;
	s->regs.rflags = save->rflags;
	s->regs.rcx = cb->gprs.r[1];
	s->regs.rdx = cb->gprs.r[2];
	s->regs.rbx = cb->gprs.r[3];
	s->regs.rbp = cb->gprs.r[5];
	s->regs.rsi = cb->gprs.r[6];
	s->regs.rdi = cb->gprs.r[7];
	s->regs.r8 = cb->gprs.r[8];
	s->regs.r9 = cb->gprs.r[9];
	s->regs.r10 = cb->gprs.r[10];
	s->regs.r11 = cb->gprs.r[11];
	s->regs.r12 = cb->gprs.r[12];
	s->regs.r13 = cb->gprs.r[13];
	s->regs.r14 = cb->gprs.r[14];
	s->regs.r15 = cb->gprs.r[15];

	ct_seg_from_vmcb(&sr->es, &save->es, VCPU_SREG_ES);
	ct_seg_from_vmcb(&sr->cs, &save->cs, VCPU_SREG_CS);
	ct_seg_from_vmcb(&sr->ss, &save->ss, VCPU_SREG_SS);
	ct_seg_from_vmcb(&sr->ds, &save->ds, VCPU_SREG_DS);
	ct_seg_from_vmcb(&sr->fs, &save->fs, VCPU_SREG_FS);
	ct_seg_from_vmcb(&sr->gs, &save->gs, VCPU_SREG_GS);
	ct_seg_from_vmcb(&sr->ldt, &save->ldtr, VCPU_SREG_LDTR);
	ct_seg_from_vmcb(&sr->tr, &save->tr, VCPU_SREG_TR);
	sr->ss.dpl = save->cpl;
	sr->gdt.base = save->gdtr.base;
	sr->gdt.limit = save->gdtr.limit;
	sr->idt.base = save->idtr.base;
	sr->idt.limit = save->idtr.limit;
	sr->efer = save->efer & ~EFER_SVME;
	sr->cr0 = save->cr0;
	sr->cr2 = save->cr2;
	sr->cr3 = save->cr3;
	sr->cr4 = save->cr4;
	sr->cr8 = tpr;
	/* The guest may have loaded another CR3: let KVM read the PDPTRs. */
	sr->flags &= ~KVM_SREGS2_FLAGS_PDPTRS_VALID;

	for (i = 0; i < 4; i++)
		s->debugregs.db[i] = cb->dr[i];
	s->debugregs.dr6 = save->dr6;
	s->debugregs.dr7 = save->dr7;

	memcpy(s->xsave, c->xsave, s->xsave_size);
	ct_set_xcr0(s, cb->xcr0);

	ct_set_msr(s, MSR_EFER, save->efer & ~EFER_SVME);
	ct_set_msr(s, MSR_FS_BASE, save->fs.base);
	ct_set_msr(s, MSR_GS_BASE, save->gs.base);
	ct_set_msr(s, MSR_KERNEL_GS_BASE, save->kernel_gs_base);
	ct_set_msr(s, MSR_STAR, save->star);
	ct_set_msr(s, MSR_LSTAR, save->lstar);
	ct_set_msr(s, MSR_CSTAR, save->cstar);
	ct_set_msr(s, MSR_SYSCALL_MASK, save->sfmask);
	if (cb->flags & CTRT_F_TSC_AUX)
		ct_set_msr(s, MSR_TSC_AUX, cb->tsc_aux);
	if (cb->flags & CTRT_F_SPEC_CTRL)
		ct_set_msr(s, MSR_IA32_SPEC_CTRL, cb->spec_ctrl);

	s->events.interrupt.shadow = (ctl->int_state & SVM_INTERRUPT_SHADOW_MASK) ?
				     KVM_X86_SHADOW_INT_MOV_SS : 0;
	ct_store_events(&s->events, ctl->exit_int_info, ctl->exit_int_info_err);
}
