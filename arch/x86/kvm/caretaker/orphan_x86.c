// SPDX-License-Identifier: GPL-2.0-only
/*
 * The x86 (AMD SVM) side of an orphan: its runtime, its nested page
 * table, and its vCPUs' state on the way out of KVM and back in.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/cpu.h>
#include <linux/cpu_park_kho.h>
#include <linux/delay.h>
#include <linux/kexec_handover.h>
#include <linux/kvm_host.h>
#include <linux/math64.h>
#include <linux/slab.h>
#include <linux/sort.h>
#include <asm/apic.h>
#include <asm/cpuid/api.h>
#include <asm/svm.h>
#include <asm/tsc.h>

#include "caretaker.h"
#include "ct_x86.h"
#include "pgtable.h"
#include "runtime.h"
#include "svm_encode.h"
#include "cpuid.h"
#include "lapic.h"
#include "svm_state.h"
#include "x86.h"

/**
 * struct ct_x86_vcpu - one vCPU of an orphan
 * @state: its state, taken at DETACH, brought up to date at ATTACH
 * @cpuid: its CPUID entries, which the adopting vCPU must have
 * @cpuid_nent: entries in @cpuid
 * @tsc_khz: its TSC frequency, which the adopting vCPU must have
 * @tsc_unscaled: it ran on the host's TSC unscaled: an adopter that does
 *	too runs at the same rate, whatever its kernel calibrated
 * @triple_fault: the guest shut down while detached
 * @stopped: the runtime stopped and @last holds its final figures
 * @timer_pending: KVM had counted a timer expiry it had not delivered
 * @timer_active: KVM's APIC timer was armed when DETACH stopped it
 * @started: DETACH gave it to the runtime (until it is taken back)
 * @pre: a copy of the state ATTACH_PREPARE loaded into the adopting vCPU
 *	(its buffers kept for the next one): ATTACH need not load again
 *	what the guest left as it was
 * @delta: room for the MSR entries ATTACH loads after a preload
 * @last: the runtime's control block as it stopped (telemetry)
 */
struct ct_x86_vcpu {
	struct kvm_x86_vcpu_state state;
	struct kvm_x86_vcpu_state pre;
	struct kvm_msr_entry *delta;
	struct kvm_cpuid_entry2 *cpuid;
	int cpuid_nent;
	u32 tsc_khz;
	bool tsc_unscaled;
	bool triple_fault;
	bool stopped;
	bool timer_pending;
	bool timer_active;
	bool started;
	struct ctrt_cpu last;
};

/**
 * struct ct_x86_orphan - the x86 part of struct caretaker_orphan
 * @rt: the runtime instance and its parked CPUs
 * @npt: the nested page table of the guest's pinned memory
 * @clock: the VM's kvmclock at DETACH (KVM_GET_CLOCK)
 * @host_tsc_khz: the host's TSC rate as the kernel of DETACH calibrated it
 * @irqchip_mode: the VM's, which the adopter must have
 * @disabled_quirks: likewise
 * @x2apic_format: likewise (KVM_CAP_X2APIC_API)
 * @x2apic_broadcast_quirk_disabled: likewise
 * @nr_vcpus: entries in @vcpus
 * @vcpus: by vCPU index
 */
struct ct_x86_orphan {
	struct ct_runtime *rt;
	struct ct_pgtable npt;
	struct kvm_clock_data clock;
	u32 host_tsc_khz;
	enum kvm_irqchip_mode irqchip_mode;
	u64 disabled_quirks;
	bool x2apic_format;
	bool x2apic_broadcast_quirk_disabled;
	u32 nr_vcpus;
	struct ct_x86_vcpu vcpus[] __counted_by(nr_vcpus);
};

static void ct_x86_vcpu_free(struct ct_x86_vcpu *v)
{
	kvm_x86_vcpu_state_free(&v->state);
	kvm_x86_vcpu_state_free(&v->pre);
	kfree(v->cpuid);
	kvfree(v->delta);
}

static void ct_x86_free(struct ct_x86_orphan *x)
{
	u32 i;

	for (i = 0; i < x->nr_vcpus; i++)
		ct_x86_vcpu_free(&x->vcpus[i]);
	ct_pgtable_destroy(&x->npt);
	kfree(x);
}

/* The x86 part of @o, empty, for PREPARE or for a retrieve. */
static struct ct_x86_orphan *ct_x86_alloc(struct caretaker_orphan *o)
{
	struct ct_x86_orphan *x;

	x = kzalloc(struct_size(x, vcpus, o->nr_vcpus), GFP_KERNEL_ACCOUNT);
	if (!x)
		return NULL;
	x->nr_vcpus = o->nr_vcpus;
	INIT_LIST_HEAD(&x->npt.pages);
	o->arch = x;
	return x;
}

/* Map every pinned guest page; MMIO and holes stay unmapped (#NPF). */
static struct caretaker_refusal ct_x86_build_npt(struct caretaker_orphan *o,
						 struct ct_x86_orphan *x)
{
	unsigned long p;
	u32 i;
	int ret;

	ret = ct_pgtable_init(&x->npt, CT_PTE_RW | CT_PTE_US);
	for (i = 0; !ret && i < o->nr_slots; i++) {
		struct caretaker_mem_slot *ms = &o->slots[i];

		if (ms->flags & KVM_MEM_READONLY)
			return CARETAKER_REFUSE(-EOPNOTSUPP, "a memslot is read-only");
		for (p = 0; !ret && p < ms->npages; p++) {
			ret = ct_pgtable_map(&x->npt, gfn_to_gpa(ms->base_gfn + p),
					     PFN_PHYS(ms->pfns[p]),
					     CT_PTE_RW | CT_PTE_US | CT_PTE_A | CT_PTE_D);
			if (!(p % 4096))
				cond_resched();
		}
	}
	if (ret)
		return CARETAKER_REFUSE(ret, "the nested page table could not be built");
	return CARETAKER_OK;
}

/**
 * caretaker_arch_prepare() - build the orphan's runtime and park its CPUs
 * @o: the orphan, its memory pinned
 * @kvm: its VM
 *
 * Everything slow happens here, before the guest-visible stall: the
 * state buffers, the nested page table, the runtime and the parking.
 *
 * Context: process context, may sleep.
 * Return: CARETAKER_OK or a refusal; caretaker_arch_release() undoes it.
 */
struct caretaker_refusal caretaker_arch_prepare(struct caretaker_orphan *o,
						struct kvm *kvm)
{
	struct caretaker_refusal r;
	struct ct_x86_orphan *x;
	struct kvm_vcpu *vcpu;
	struct ct_runtime *rt;
	unsigned long i;
	int ret;

	x = ct_x86_alloc(o);
	if (!x)
		return CARETAKER_REFUSE(-ENOMEM, "out of memory");

	kvm_for_each_vcpu(i, vcpu, kvm) {
		if (i >= x->nr_vcpus)
			break;
		ret = kvm_x86_vcpu_state_alloc(vcpu, &x->vcpus[i].state);
		if (ret)
			return CARETAKER_REFUSE(ret, "out of memory");
	}

	r = ct_x86_build_npt(o, x);
	if (r.err)
		return r;

	rt = ct_runtime_create(o->nr_vcpus, o->cpus, x->vcpus[0].state.xsave_size);
	if (IS_ERR(rt))
		return CARETAKER_REFUSE(PTR_ERR(rt), "the runtime could not be built");
	x->rt = rt;
	ret = ct_runtime_park(rt);
	if (ret)
		return CARETAKER_REFUSE(ret, "a CPU could not be parked");
	return CARETAKER_OK;
}

/*
 * The preempted byte of a vCPU's steal-time area (MSR_KVM_STEAL_TIME), in
 * the orphan's pinned memory, or NULL if the guest has none.
 */
static u8 *ct_x86_preempted(struct caretaker_orphan *o, const struct kvm_x86_vcpu_state *s)
{
	u64 st = ct_msr(s, MSR_KVM_STEAL_TIME, 0);

	if (!(st & KVM_MSR_ENABLED))
		return NULL;
	return caretaker_mem_kaddr(o, (st & KVM_STEAL_VALID_BITS) +
				   offsetof(struct kvm_steal_time, preempted));
}

/*
 * Steal time, as KVM does around a vCPU's run: the runtime runs the vCPU
 * from DETACH to ATTACH, so it is not preempted (other vCPUs then send it
 * TLB-flush IPIs instead of setting KVM_VCPU_FLUSH_TLB); a flush it was
 * asked for is done by the runtime's first VMRUN, which flushes the ASID.
 * When the runtime stops it, it is preempted again until KVM runs it,
 * and KVM's record_steal_time() does the flushes requested meanwhile.
 */
static void ct_x86_steal_time(struct caretaker_orphan *o, const struct kvm_x86_vcpu_state *s,
			      bool running)
{
	u8 *preempted = ct_x86_preempted(o, s);

	if (!preempted)
		return;
	if (running)
		xchg(preempted, 0);
	else
		WRITE_ONCE(*preempted, KVM_VCPU_PREEMPTED);
}

/*
 * The runtime's copy of @vcpu's CPUID and of what kvm_cpuid() derives
 * from live state, for its fast path (cpuid.h).
 */
static void ct_x86_fill_cpuid(struct ctrt_cpuid *t, struct kvm_vcpu *vcpu)
{
	u32 i, eax, ebx, ecx, edx;

	memset(t, 0, sizeof(*t));
	t->nr = min_t(u32, vcpu->arch.cpuid_nent, CTRT_CPUID_MAX);
	for (i = 0; i < t->nr; i++) {
		const struct kvm_cpuid_entry2 *e = &vcpu->arch.cpuid_entries[i];

		t->e[i] = (struct ctrt_cpuid_entry){
			.function = e->function, .index = e->index, .flags = e->flags,
			.eax = e->eax, .ebx = e->ebx, .ecx = e->ecx, .edx = e->edx,
		};
	}
	if (!kvm_check_has_quirk(vcpu->kvm, KVM_X86_QUIRK_MISC_ENABLE_NO_MWAIT))
		t->flags |= CTRT_CPUID_F_MWAIT;
	if (vcpu->arch.msr_misc_features_enables & MSR_MISC_FEATURES_ENABLES_CPUID_FAULT)
		t->flags |= CTRT_CPUID_F_FAULT;
	/* SVM has no TSX_CTRL, and Hyper-V's invariant-TSC hiding is refused. */
	t->apic_base = vcpu->arch.apic_base;
	t->misc_enable = vcpu->arch.ia32_misc_enable_msr;
	t->xss = vcpu->arch.ia32_xss;
	t->supported_xcr0 = vcpu->arch.guest_supported_xcr0;
	/* xstate_required_size()'s table: the host's layout. */
	for (i = 2; i < CTRT_XSTATE_MAX; i++) {
		cpuid_count(0xd, i, &eax, &ebx, &ecx, &edx);
		t->xstate_size[i] = eax;
		t->xstate_offset[i] = ebx;
		if (ecx & BIT(1))
			t->xstate_align |= BIT(i);
	}
}

/*
 * What the runtime's APIC needs from KVM beyond KVM_GET_LAPIC's image;
 * ct_svm_load() adds the registers.
 */
static void ct_x86_fill_apic(struct ctrt_apic *a, struct kvm_vcpu *vcpu, bool pending,
			     bool armed)
{
	memset(a, 0, sizeof(*a));
	if (!lapic_in_kernel(vcpu))
		return;
	a->flags = CTRT_APIC_IN_KERNEL;
	if (pending)
		a->flags |= CTRT_APIC_TIMER_PENDING;
	if (armed)
		a->flags |= CTRT_APIC_TIMER_ARMED;
	if (guest_cpu_cap_has(vcpu, X86_FEATURE_TSC_DEADLINE_TIMER))
		a->flags |= CTRT_APIC_GUEST_TSCDL;
	a->id = vcpu->vcpu_id;
	a->bus_cycle_ns = vcpu->kvm->arch.apic_bus_cycle_ns;
	/* KVM's min_timer_period_us, at its default: the parameter is KVM's own. */
	a->min_period_ns = 200 * NSEC_PER_USEC;
	bitmap_to_arr32(a->eoi_exit, vcpu->arch.ioapic_handled_vectors, 256);
}

static u64 ct_cycles_to_ns(u64 cycles)
{
	return tsc_khz ? mul_u64_u32_div(cycles, NSEC_PER_MSEC, tsc_khz) : 0;
}

/* Undo the timer stop of ct_x86_take_vcpu() on a vCPU that stays with KVM. */
static void ct_x86_timer_restore(struct kvm_vcpu *vcpu, bool active, bool pending)
{
	struct kvm_timer *t;

	if (!lapic_in_kernel(vcpu))
		return;
	t = &vcpu->arch.apic->lapic_timer;
	if (active)
		hrtimer_start_expires(&t->timer, HRTIMER_MODE_ABS_HARD);
	if (pending)
		atomic_inc(&t->pending);
}

/*
 * Take the state of vCPU @i, stopped, its mutex held.  On a refusal the
 * vCPU is with KVM as it was.
 */
static struct caretaker_refusal ct_x86_take_vcpu(struct ct_x86_orphan *x,
						 struct kvm_vcpu *vcpu, u32 i)
{
	struct ct_x86_vcpu *v = &x->vcpus[i];
	struct caretaker_refusal r;
	bool pending = false, active = false;
	int ret;

	r = caretaker_x86_check_vcpu_state(vcpu);
	if (r.err)
		return r;
	/*
	 * Stop KVM's APIC timer first: an expiry KVM has counted but not
	 * delivered is not in KVM_GET_LAPIC's image, and one after the read
	 * would be lost.  The runtime delivers it instead; whoever adopts the
	 * vCPU restarts the timer from the state.
	 */
	if (lapic_in_kernel(vcpu)) {
		struct kvm_timer *t = &vcpu->arch.apic->lapic_timer;

		active = hrtimer_cancel(&t->timer);
		pending = atomic_xchg(&t->pending, 0) > 0;
	}
	ret = kvm_x86_vcpu_get_state(vcpu, &v->state);
	if (ret) {
		r = CARETAKER_REFUSE(ret, "the vCPU state could not be read");
		goto restore;
	}
	kfree(v->cpuid);
	v->cpuid = kmemdup_array(vcpu->arch.cpuid_entries, vcpu->arch.cpuid_nent,
				 sizeof(*v->cpuid), GFP_KERNEL_ACCOUNT);
	if (!v->cpuid && vcpu->arch.cpuid_nent) {
		r = CARETAKER_REFUSE(-ENOMEM, "out of memory");
		goto restore;
	}
	v->cpuid_nent = vcpu->arch.cpuid_nent;
	v->timer_pending = pending;
	v->timer_active = active;
	ct_x86_fill_cpuid(x->rt->cpus[i].cpuid, vcpu);
	ct_x86_fill_apic(&x->rt->cpus[i].cb->apic, vcpu, pending, active);
	v->tsc_khz = vcpu->arch.virtual_tsc_khz;
	v->tsc_unscaled = vcpu->arch.l1_tsc_scaling_ratio ==
			  kvm_caps.default_tsc_scaling_ratio;
	return CARETAKER_OK;

restore:
	ct_x86_timer_restore(vcpu, active, pending);
	return r;
}

/*
 * Hand vCPU @i, stopped, its mutex held, to its parked CPU.  On a refusal
 * the vCPU is with KVM as it was.
 */
static struct caretaker_refusal ct_x86_handover(struct caretaker_orphan *o,
						struct kvm_vcpu *vcpu, u32 i)
{
	struct ct_x86_orphan *x = o->arch;
	struct ct_x86_vcpu *v = &x->vcpus[i];
	struct caretaker_refusal r;

	r = ct_x86_take_vcpu(x, vcpu, i);
	if (r.err)
		return r;
	if (ct_svm_load(&x->rt->cpus[i], &v->state, ct_pgtable_root_pa(&x->npt))) {
		ct_x86_timer_restore(vcpu, v->timer_active, v->timer_pending);
		return CARETAKER_REFUSE(-EINVAL, "the vCPU state does not fit the runtime");
	}
	ct_x86_steal_time(o, &v->state, true);
	v->stopped = false;
	v->started = true;
	ct_runtime_start(&x->rt->cpus[i]);
	return CARETAKER_OK;
}

/*
 * DETACH failed: take back from the runtime every vCPU it was given, with
 * what the guest did meanwhile.  Every vcpu->mutex is held.  Returns what
 * that left of the orphan's CPUs.
 */
static enum caretaker_spent ct_x86_takeback(struct caretaker_orphan *o, struct kvm *kvm)
{
	enum caretaker_spent spent = CARETAKER_NOT_SPENT;
	struct ct_x86_orphan *x = o->arch;
	struct kvm_vcpu *vcpu;
	unsigned long i;

	kvm_for_each_vcpu(i, vcpu, kvm) {
		struct ct_x86_vcpu *v;
		struct ct_runtime_cpu *c;

		if (i >= x->nr_vcpus)
			break;
		v = &x->vcpus[i];
		c = &x->rt->cpus[i];
		if (!v->started)
			continue;
		if (ct_runtime_stop(c)) {
			/* The CPU may still run the guest: it stays the runtime's. */
			pr_err_ratelimited("DETACH failed, vCPU %lu could not be taken back\n", i);
			spent = CARETAKER_LOST;
			continue;
		}
		if (spent == CARETAKER_NOT_SPENT)
			spent = CARETAKER_SPENT;
		v->started = false;
		ct_x86_steal_time(o, &v->state, false);
		ct_svm_store(c, &v->state);
		if (kvm_x86_vcpu_set_state(vcpu, &v->state)) {
			/* KVM would run it from its state before DETACH: never. */
			pr_err_ratelimited("DETACH failed, vCPU %lu refused its state back\n", i);
			spent = CARETAKER_LOST;
		}
		if (c->cb->blocked_tsc && c->cb->blocked_code == SVM_EXIT_SHUTDOWN)
			kvm_make_request(KVM_REQ_TRIPLE_FAULT, vcpu);
	}
	return spent;
}

/* Stop the runtime and bring the states up to date with the guest's. */
static struct caretaker_refusal ct_x86_stop(struct caretaker_orphan *o,
					    struct ct_x86_orphan *x)
{
	u32 i;

	for (i = 0; i < x->nr_vcpus; i++)
		if (ct_runtime_stop(&x->rt->cpus[i]))
			return CARETAKER_REFUSE(-EIO, "the runtime did not stop");
	for (i = 0; i < x->nr_vcpus; i++) {
		struct ct_runtime_cpu *c = &x->rt->cpus[i];

		if (!x->vcpus[i].stopped)
			ct_x86_steal_time(o, &x->vcpus[i].state, false);

		ct_svm_store(c, &x->vcpus[i].state);
		x->vcpus[i].triple_fault = c->cb->blocked_tsc &&
					   c->cb->blocked_code == SVM_EXIT_SHUTDOWN;
		x->vcpus[i].last = *c->cb;
		x->vcpus[i].stopped = true;
	}
	return CARETAKER_OK;
}

/*
 * The VM clock for the adopter.  Within one kernel, KVM_SET_CLOCK's
 * realtime rule (add the wall-clock time elapsed since DETACH) is what a
 * VMM restart needs.  Across a kexec the next kernel's wall clock comes
 * from the RTC, good to a second, which could move kvmclock backwards;
 * the TSC runs on through the kexec, so the elapsed time is taken from
 * it instead, when KVM_GET_CLOCK gave the TSC it read the clock at.
 */
static struct kvm_clock_data ct_x86_clock(struct ct_x86_orphan *x, bool incoming)
{
	struct kvm_clock_data c = x->clock;
	u32 khz = x->host_tsc_khz ?: tsc_khz;
	u64 now = rdtsc();

	if (!incoming || !(c.flags & KVM_CLOCK_HOST_TSC) || !khz || now < c.host_tsc)
		return c;
	/* At the rate the guest's kvmclock ran, the previous kernel's. */
	c.clock += mul_u64_u32_div(now - c.host_tsc, NSEC_PER_MSEC, khz);
	c.flags &= ~(KVM_CLOCK_REALTIME | KVM_CLOCK_HOST_TSC);
	return c;
}

/* Load the states into @kvm's vCPUs, with the clock as taken at DETACH. */
static struct caretaker_refusal ct_x86_give(struct ct_x86_orphan *x, struct kvm *kvm,
					    bool incoming)
{
	struct kvm_clock_data clock = ct_x86_clock(x, incoming);
	struct kvm_vcpu *vcpu;
	unsigned long i;
	int ret;

	ret = kvm_x86_vm_set_clock(kvm, &clock);
	if (ret)
		return CARETAKER_REFUSE(ret, "the VM clock could not be set");
	kvm_for_each_vcpu(i, vcpu, kvm) {
		ret = kvm_x86_vcpu_set_state(vcpu, &x->vcpus[i].state);
		if (ret)
			return CARETAKER_REFUSE(ret, "the adopting vCPU refused the state");
		if (x->vcpus[i].triple_fault)
			kvm_make_request(KVM_REQ_TRIPLE_FAULT, vcpu);
	}
	return CARETAKER_OK;
}

/**
 * caretaker_arch_check_stopped() - can DETACH carry this vCPU?
 * @vcpu: a vCPU out of the guest for good, its mutex held
 *
 * Context: process context.
 * Return: CARETAKER_OK, or -EBUSY naming what DETACH cannot carry.
 */
struct caretaker_refusal caretaker_arch_check_stopped(struct kvm_vcpu *vcpu)
{
	return caretaker_x86_check_vcpu_state(vcpu);
}

/**
 * caretaker_arch_handover() - hand one vCPU to its parked CPU
 * @o: the orphan, in DETACH, every vCPU out of the guest for good
 * @vcpu: one of its VM's vCPUs, its mutex held
 * @wait: wait until the runtime runs the guest
 *
 * From the vCPU's own thread (caretaker_vcpu_stopped()) @wait is set: a
 * thread that went on to userspace instead would keep the parked CPU from
 * the guest wherever the two share a physical CPU (a nested host whose
 * CPUs take turns, as in the selftests); polling yields, and elsewhere
 * the wait is the NMI's delivery.  A vCPU handed over already is left
 * alone; a runtime that does not start is caretaker_arch_detach()'s to
 * see.
 *
 * Context: process context, may sleep.
 * Return: CARETAKER_OK or a refusal; on a refusal the vCPU is with KVM.
 */
struct caretaker_refusal caretaker_arch_handover(struct caretaker_orphan *o,
						 struct kvm_vcpu *vcpu, bool wait)
{
	struct ct_x86_orphan *x = o->arch;
	struct caretaker_refusal r;
	u32 i = vcpu->vcpu_idx;

	if (i >= x->nr_vcpus || x->vcpus[i].started)
		return CARETAKER_OK;
	r = ct_x86_handover(o, vcpu, i);
	if (!r.err && wait)
		ct_runtime_wait_started(&x->rt->cpus[i]);
	return r;
}

/**
 * caretaker_arch_detach() - hand the vCPUs to the runtime
 * @o: the orphan, prepared
 * @kvm: its VM, every vCPU stopped and its mutex held
 * @t0: ktime_get_ns() when the vCPUs were asked to stop
 * @spent: on a refusal, what became of the orphan's CPUs
 *
 * Most vCPUs were handed over already (caretaker_arch_handover()); this
 * hands over any other, then waits until every runtime runs its guest.
 * If a vCPU cannot be handed over or a runtime does not start, every vCPU
 * is taken back into @kvm with whatever the guest did meanwhile, and
 * DETACH fails.  On success @o->stall_ns is the time from @t0 to the last
 * vCPU's first VMRUN.
 *
 * Context: process context, may sleep.
 * Return: CARETAKER_OK or a refusal; on a refusal the VM runs as before,
 * unless *@spent is CARETAKER_LOST.
 */
struct caretaker_refusal caretaker_arch_detach(struct caretaker_orphan *o,
					       struct kvm *kvm, u64 t0,
					       enum caretaker_spent *spent)
{
	struct ct_x86_orphan *x = o->arch;
	struct caretaker_refusal r = CARETAKER_OK;
	struct kvm_vcpu *vcpu;
	u64 last = 0, now_tsc, now;
	unsigned long i;

	*spent = CARETAKER_NOT_SPENT;
	if (atomic_read(&kvm->online_vcpus) != x->nr_vcpus) {
		r = CARETAKER_REFUSE(-EBUSY, "the VM's vCPUs changed since PREPARE");
		goto back;
	}
	/* Every vCPU that is still with KVM first, so a refusal changes less. */
	kvm_for_each_vcpu(i, vcpu, kvm) {
		if (x->vcpus[i].started)
			continue;
		r = caretaker_x86_check_vcpu_state(vcpu);
		if (r.err)
			goto back;
	}
	kvm_for_each_vcpu(i, vcpu, kvm) {
		if (x->vcpus[i].started)
			continue;
		r = ct_x86_handover(o, vcpu, i);
		if (r.err)
			goto back;
	}
	for (i = 0; i < x->nr_vcpus; i++) {
		struct ct_runtime_cpu *c = &x->rt->cpus[i];

		if (ct_runtime_wait_started(c)) {
			r = CARETAKER_REFUSE(-EIO, "the runtime did not start the guest");
			goto back;
		}
		last = max(last, READ_ONCE(c->cb->run_tsc));
	}
	/* The last first VMRUN, in ktime: so long ago. */
	now_tsc = rdtsc();
	now = ktime_get_ns() - t0;
	o->stall_ns = now - min(now, ct_cycles_to_ns(now_tsc - min(last, now_tsc)));
	/*
	 * kvmclock runs on with the host's time whether or not vCPUs run:
	 * read after the stall, KVM_GET_CLOCK's value with its realtime
	 * stamp is as good as one read before.
	 */
	kvm_x86_vm_get_clock(kvm, &x->clock);
	x->host_tsc_khz = tsc_khz;
	x->irqchip_mode = kvm->arch.irqchip_mode;
	x->disabled_quirks = kvm->arch.disabled_quirks;
	x->x2apic_format = kvm->arch.x2apic_format;
	x->x2apic_broadcast_quirk_disabled = kvm->arch.x2apic_broadcast_quirk_disabled;
	return CARETAKER_OK;

back:
	*spent = ct_x86_takeback(o, kvm);
	/*
	 * DETACH's first checks passed and the irqfds are released: a vCPU
	 * that changed meanwhile is worth another try, after the VMM
	 * registered its irqfds again (and, its CPUs spent, prepared again).
	 */
	if (r.err == -EBUSY)
		r.err = -EAGAIN;
	return r;
}

/*
 * KVM rewrites a few CPUID bits as the guest runs (kvm_update_cpuid_runtime():
 * OSXSAVE and OSPKE follow CR4, APIC follows the APIC base MSR, MONITOR
 * a quirk of MISC_ENABLE, XSAVE's sizes follow XCR0 and XSS): a fresh vCPU
 * given the same KVM_SET_CPUID2 as the source differs there, and the state
 * ATTACH loads puts them right.  Everything else must be equal.
 */
static void ct_cpuid_mask(struct kvm_cpuid_entry2 *e)
{
	switch (e->function) {
	case 1:
		e->ecx &= ~(BIT(27) | BIT(3));
		e->edx &= ~BIT(9);
		break;
	case 7:
		if (!e->index)
			e->ecx &= ~BIT(4);
		break;
	case 0xd:
		if (e->index <= 1)
			e->ebx = 0;
		break;
	}
}

static bool ct_cpuid_equal(const struct kvm_cpuid_entry2 *a,
			   const struct kvm_cpuid_entry2 *b, int n)
{
	struct kvm_cpuid_entry2 x, y;
	int i;

	for (i = 0; i < n; i++) {
		x = a[i];
		y = b[i];
		ct_cpuid_mask(&x);
		ct_cpuid_mask(&y);
		if (memcmp(&x, &y, sizeof(x)))
			return false;
	}
	return true;
}

/**
 * caretaker_arch_check_adopter() - does a VM match the orphan?
 * @o: the orphan
 * @kvm: the adopting VM
 * @vm_only: only what the VM's own ioctls can still change: @kvm was
 *	checked whole by ATTACH_PREPARE, and its vCPUs refuse changes since
 *
 * Context: process context, may sleep.
 * Return: CARETAKER_OK, or -EINVAL naming the difference.
 */
struct caretaker_refusal caretaker_arch_check_adopter(struct caretaker_orphan *o,
						      struct kvm *kvm, bool vm_only)
{
	struct ct_x86_orphan *x = o->arch;
	struct kvm_vcpu *vcpu;
	unsigned long i;

	if (kvm->arch.vm_type != KVM_X86_DEFAULT_VM || kvm->arch.has_protected_state)
		return CARETAKER_REFUSE(-EINVAL, "the adopting VM is of another type");
	if (kvm->arch.irqchip_mode != x->irqchip_mode)
		return CARETAKER_REFUSE(-EINVAL, "the adopting VM's irqchip mode differs");
	if (kvm->arch.disabled_quirks != x->disabled_quirks)
		return CARETAKER_REFUSE(-EINVAL, "the adopting VM's quirks differ");
	if (kvm->arch.x2apic_format != x->x2apic_format ||
	    kvm->arch.x2apic_broadcast_quirk_disabled != x->x2apic_broadcast_quirk_disabled)
		return CARETAKER_REFUSE(-EINVAL, "the adopting VM's x2APIC API flags differ");
	if (vm_only)
		return CARETAKER_OK;

	guard(mutex)(&kvm->lock);
	kvm_for_each_vcpu(i, vcpu, kvm) {
		struct ct_x86_vcpu *v = &x->vcpus[i];

		if (vcpu->arch.cpuid_nent != v->cpuid_nent ||
		    !ct_cpuid_equal(vcpu->arch.cpuid_entries, v->cpuid, v->cpuid_nent))
			return CARETAKER_REFUSE(-EINVAL, "the adopting vCPU's CPUID differs");
		/*
		 * The same TSC rate: as set, or both the host's own TSC,
		 * unscaled, which a kernel after a kexec may have calibrated
		 * a little differently (then a VMM cannot even set the old
		 * figure on a host without TSC scaling).
		 */
		if (vcpu->arch.virtual_tsc_khz != v->tsc_khz &&
		    !(v->tsc_unscaled &&
		      vcpu->arch.l1_tsc_scaling_ratio == kvm_caps.default_tsc_scaling_ratio))
			return CARETAKER_REFUSE(-EINVAL,
						"the adopting vCPU's TSC frequency differs");
	}
	return CARETAKER_OK;
}

/**
 * caretaker_arch_try_state() - can the adopting VM take an incoming orphan's state?
 * @o: the orphan, incoming, still running
 * @kvm: the adopting VM, checked, every vCPU's mutex held
 *
 * After a kexec, another build of KVM must be able to take the state (its
 * XSAVE size, its MSRs) before the runtime is stopped for good: it is
 * loaded into the adopter's vCPUs, which ATTACH overwrites anyway.  Their
 * mutexes are held, so none of them can run that copy meanwhile.
 *
 * Context: process context, may sleep.
 * Return: CARETAKER_OK, or -EINVAL; either way @kvm's vCPUs hold a copy
 * of the guest that is not the guest's current state.
 */
struct caretaker_refusal caretaker_arch_try_state(struct caretaker_orphan *o,
						  struct kvm *kvm)
{
	struct ct_x86_orphan *x = o->arch;
	struct kvm_vcpu *vcpu;
	unsigned long i;

	kvm_for_each_vcpu(i, vcpu, kvm) {
		lockdep_assert_held(&vcpu->mutex);
		if (kvm_x86_vcpu_set_state(vcpu, &x->vcpus[i].state))
			return CARETAKER_REFUSE(-EINVAL,
						"the adopting vCPU cannot take the orphan's state");
	}
	return CARETAKER_OK;
}

/**
 * caretaker_arch_preload() - load the state into a VM ahead of ATTACH
 * @o: the orphan, detached, still running
 * @kvm: the adopting VM, checked, every vCPU's mutex held, its vCPUs
 *	refusing KVM_RUN
 *
 * KVM_CARETAKER_ATTACH_PREPARE: sets the VM clock and loads each vCPU's
 * state as the orphan holds it (DETACH's, or the previous kernel's) into
 * @kvm, outside the guest-visible stall, and notes the MSR values loaded:
 * caretaker_arch_attach() then loads everything but the MSRs the guest
 * left as they were.  Setting the clock now is as good as at ATTACH: from
 * KVM_SET_CLOCK on, kvmclock runs with the host's time either way.
 *
 * Context: process context, may sleep.
 * Return: CARETAKER_OK or a refusal; either way the vCPUs' state is not
 * the guest's until caretaker_arch_attach() succeeded.
 */
struct caretaker_refusal caretaker_arch_preload(struct caretaker_orphan *o,
						struct kvm *kvm)
{
	struct ct_x86_orphan *x = o->arch;
	struct kvm_clock_data clock = ct_x86_clock(x, o->incoming);
	struct kvm_msr_entry *msrs;
	struct kvm_vcpu *vcpu;
	struct kvm_xsave *xsave;
	u32 i;
	int ret;

	ret = kvm_x86_vm_set_clock(kvm, &clock);
	if (ret)
		return CARETAKER_REFUSE(ret, "the VM clock could not be set");
	/* The orphan's vCPUs; one created after the checks is none of them. */
	for (i = 0; i < x->nr_vcpus; i++) {
		struct ct_x86_vcpu *v = &x->vcpus[i];

		vcpu = kvm_get_vcpu(kvm, i);
		if (!vcpu)
			return CARETAKER_REFUSE(-EINVAL, "the adopting VM has fewer vCPUs");
		if (!v->delta)
			v->delta = kvcalloc(v->state.nmsrs, sizeof(*v->delta), GFP_KERNEL_ACCOUNT);
		if (!v->pre.msrs)
			v->pre.msrs = kvcalloc(v->state.nmsrs ?: 1, sizeof(*v->pre.msrs),
					       GFP_KERNEL_ACCOUNT);
		if (!v->pre.xsave)
			v->pre.xsave = kvmalloc(v->state.xsave_size, GFP_KERNEL_ACCOUNT);
		if ((!v->delta && v->state.nmsrs) || !v->pre.msrs || !v->pre.xsave)
			return CARETAKER_REFUSE(-ENOMEM, "out of memory");
		ret = kvm_x86_vcpu_set_state(vcpu, &v->state);
		if (ret)
			return CARETAKER_REFUSE(-EINVAL,
						"the adopting vCPU cannot take the orphan's state");
		msrs = v->pre.msrs;
		xsave = v->pre.xsave;
		v->pre = v->state;
		v->pre.msrs = memcpy(msrs, v->state.msrs, v->state.nmsrs * sizeof(*msrs));
		v->pre.xsave = memcpy(xsave, v->state.xsave, v->state.xsave_size);
	}
	return CARETAKER_OK;
}

/*
 * The local APIC can change in the preloaded vCPU too: its timer runs in
 * KVM, and an interrupt sent to the held VM (a VM ioctl, a device of its
 * own) lands in its IRR.  Unchanged if neither happened.
 */
static bool ct_x86_lapic_unchanged(const struct ct_x86_vcpu *v, struct kvm_vcpu *vcpu)
{
	const struct kvm_lapic_state *a = &v->pre.lapic;
	struct kvm_lapic *apic = vcpu->arch.apic;
	u32 off;

	if (!lapic_in_kernel(vcpu) || memcmp(a, &v->state.lapic, sizeof(*a)))
		return false;
	if (hrtimer_active(&apic->lapic_timer.timer) || atomic_read(&apic->lapic_timer.pending))
		return false;
	/* ISR, TMR and IRR, as KVM_GET_LAPIC would give them. */
	for (off = APIC_ISR; off < APIC_IRR + 8 * 0x10; off += 0x10)
		if (kvm_lapic_get_reg(apic, off) != *(const u32 *)(a->regs + off))
			return false;
	return true;
}

/*
 * Nothing was sent to the held vCPU that KVM keeps outside the local APIC
 * registers (an INIT or SIPI, an NMI, an SMI), and it is in the MP state
 * loaded: the APIC, the events and the MP state are as preloaded.
 */
static bool ct_x86_held_quiet(const struct ct_x86_vcpu *v, struct kvm_vcpu *vcpu)
{
	return !kvm_apic_has_pending_init_or_sipi(vcpu) &&
	       !atomic_read(&vcpu->arch.nmi_queued) && !vcpu->arch.nmi_pending &&
	       !vcpu->arch.smi_pending && vcpu->arch.mp_state == v->pre.mp_state.mp_state;
}

/*
 * The parts of the state that the adopting vCPU holds as the guest left
 * them: loaded by caretaker_arch_preload(), unchanged in the guest since,
 * and, for the local APIC, the events and the MP state, in the vCPU.
 */
static unsigned int ct_x86_unchanged(const struct ct_x86_vcpu *v, struct kvm_vcpu *vcpu)
{
	const struct kvm_x86_vcpu_state *a = &v->pre, *b = &v->state;
	bool quiet = ct_x86_held_quiet(v, vcpu);
	unsigned int skip = 0;

	if (quiet && ct_x86_lapic_unchanged(v, vcpu))
		skip |= KVM_X86_STATE_LAPIC;

	if (!memcmp(&a->sregs2, &b->sregs2, sizeof(a->sregs2)))
		skip |= KVM_X86_STATE_SREGS2;
	if (!memcmp(&a->xcrs, &b->xcrs, sizeof(a->xcrs)))
		skip |= KVM_X86_STATE_XCRS;
	if (a->xsave_size == b->xsave_size && !memcmp(a->xsave, b->xsave, b->xsave_size))
		skip |= KVM_X86_STATE_XSAVE;
	if (quiet && !memcmp(&a->events, &b->events, sizeof(a->events)))
		skip |= KVM_X86_STATE_EVENTS;
	if (quiet && !memcmp(&a->mp_state, &b->mp_state, sizeof(a->mp_state)))
		skip |= KVM_X86_STATE_MP_STATE;
	if (!memcmp(&a->debugregs, &b->debugregs, sizeof(a->debugregs)))
		skip |= KVM_X86_STATE_DEBUGREGS;
	return skip;
}

/*
 * After caretaker_arch_preload(): load the registers and the TSC offset,
 * and of the rest only what changed since.  Of the MSRs, TSC_DEADLINE
 * goes in whenever the local APIC does (KVM_SET_LAPIC clears it when it
 * changes the timer's mode), the TSC never (the TSC offset, loaded last,
 * decides the guest's TSC, as it did in the preload).  The state is
 * loaded in place: what KVM's helpers change in it is not used again.
 */
static struct caretaker_refusal ct_x86_give_delta(struct ct_x86_orphan *x,
						  struct kvm *kvm)
{
	struct kvm_msr_entry *msrs;
	struct kvm_vcpu *vcpu;
	u32 i, j, n, nmsrs;
	unsigned int skip;
	int ret;

	for (i = 0; i < x->nr_vcpus; i++) {
		struct ct_x86_vcpu *v = &x->vcpus[i];

		vcpu = kvm_get_vcpu(kvm, i);
		if (!vcpu || !v->pre.msrs || v->pre.nmsrs != v->state.nmsrs)
			return CARETAKER_REFUSE(-EINVAL, "the adopting vCPU was not preloaded");
		skip = ct_x86_unchanged(v, vcpu);
		for (j = 0, n = 0; j < v->state.nmsrs; j++) {
			const struct kvm_msr_entry *e = &v->state.msrs[j];

			if (e->index == MSR_IA32_TSC)
				continue;
			if (e->data != v->pre.msrs[j].data ||
			    (e->index == MSR_IA32_TSC_DEADLINE && !(skip & KVM_X86_STATE_LAPIC)))
				v->delta[n++] = *e;
		}
		/* The state with only those MSRs: too large for the stack. */
		msrs = v->state.msrs;
		nmsrs = v->state.nmsrs;
		v->state.msrs = v->delta;
		v->state.nmsrs = n;
		ret = kvm_x86_vcpu_load_state(vcpu, &v->state, skip);
		v->state.msrs = msrs;
		v->state.nmsrs = nmsrs;
		if (ret)
			return CARETAKER_REFUSE(-EINVAL, "the adopting vCPU refused the state");
		if (v->triple_fault)
			kvm_make_request(KVM_REQ_TRIPLE_FAULT, vcpu);
	}
	return CARETAKER_OK;
}

/**
 * caretaker_arch_attach() - take the guest from the runtime into a VM
 * @o: the orphan, detached
 * @kvm: the adopting VM, checked, every vCPU's mutex held
 * @preloaded: caretaker_arch_preload() succeeded on @kvm
 * @loaded: out: the runtime stopped and the state went (or began to go)
 *	into @kvm
 *
 * Stops the runtime at the guest's next exit (or where it waits), and
 * loads the state into @kvm's vCPUs: all of it, or after a preload what
 * the guest may have changed since.  An exit the guest waited on is
 * re-executed by KVM (RIP is at its instruction); a shutdown becomes
 * KVM's triple fault.  The CPUs stay parked: the caller returns them.
 *
 * Context: process context, may sleep.
 * Return: CARETAKER_OK or a refusal; once the runtime is stopped, a
 * retry with another VM, or without the preload, can still succeed.
 */
struct caretaker_refusal caretaker_arch_attach(struct caretaker_orphan *o,
					       struct kvm *kvm, bool preloaded,
					       bool *loaded)
{
	struct ct_x86_orphan *x = o->arch;
	struct caretaker_refusal r;

	*loaded = false;
	r = ct_x86_stop(o, x);
	if (r.err)
		return r;
	*loaded = true;
	return preloaded ? ct_x86_give_delta(x, kvm) : ct_x86_give(x, kvm, o->incoming);
}

/**
 * caretaker_arch_status() - the runtime's figures for KVM_CARETAKER_GET_STATUS
 * @o: the orphan, detached
 * @st: the status being filled
 *
 * Context: any context; the figures are racy snapshots.
 */
void caretaker_arch_status(struct caretaker_orphan *o, struct kvm_caretaker_status *st)
{
	struct ct_x86_orphan *x = o->arch;
	u32 i;

	for (i = 0; i < x->nr_vcpus; i++) {
		struct ctrt_cpu *cb = x->rt->cpus[i].cb;

		st->exits += READ_ONCE(cb->exits);
		if (READ_ONCE(cb->state) == CTRT_ST_BLOCKED) {
			/* PRESERVED says more than BLOCKED: it stays. */
			if (st->state == KVM_CARETAKER_STATE_DETACHED)
				st->state = KVM_CARETAKER_STATE_BLOCKED;
			st->blocked_exits++;
		}
	}
}

/**
 * caretaker_arch_vcpu_status() - one vCPU's telemetry
 * @o: the orphan, detached or adopted
 * @vs: in: vcpu_index; out: the rest
 *
 * While detached the figures are racy snapshots of the runtime's; once
 * the runtime stopped they are its final ones.
 *
 * Context: process context, under the orphan's lock.
 * Return: 0, -EINVAL for an index out of range, -ENODATA before DETACH.
 */
int caretaker_arch_vcpu_status(struct caretaker_orphan *o,
			       struct kvm_caretaker_vcpu_status *vs)
{
	struct ct_x86_orphan *x = o->arch;
	struct ctrt_cpu snap, *cb;
	struct ct_x86_vcpu *v;
	u64 now, end;
	u32 i;

	if (!x || vs->vcpu_index >= x->nr_vcpus)
		return -EINVAL;
	v = &x->vcpus[vs->vcpu_index];
	if (v->stopped) {
		cb = &v->last;
	} else if (x->rt) {
		snap = *x->rt->cpus[vs->vcpu_index].cb;
		cb = &snap;
	} else {
		return -ENODATA;
	}
	if (!cb->run_tsc && !v->stopped)
		return -ENODATA;

	vs->cpu = o->cpus[vs->vcpu_index];
	vs->exits = cb->exits;
	for (i = 0; i < KVM_CARETAKER_NR_EXIT_KINDS; i++) {
		vs->exits_by_kind[i] = cb->exit_kinds[i];
		vs->handled_by_kind[i] = cb->handled_kinds[i];
	}
	vs->nmis = cb->nmis;
	vs->timer_fires = cb->apic.fires;
	vs->injected = cb->apic.injected;
	vs->halts = cb->apic.halts;
	vs->max_late_ns = ct_cycles_to_ns(cb->apic.max_late_tsc);
	vs->host_interrupts = cb->strays;
	now = rdtsc();
	end = v->stopped ? cb->stop_tsc : now;
	vs->detached_ns = cb->run_tsc ? ct_cycles_to_ns(end - cb->run_tsc) : 0;
	if (cb->blocked_tsc) {
		vs->blocked_exit_code = cb->blocked_code;
		vs->blocked_rip = cb->blocked_rip;
		vs->blocked_ns = ct_cycles_to_ns(end - cb->blocked_tsc);
	}
	if (v->stopped)
		vs->state = KVM_CARETAKER_VCPU_STOPPED;
	else if (cb->state == CTRT_ST_BLOCKED)
		vs->state = KVM_CARETAKER_VCPU_BLOCKED;
	else if (cb->state == CTRT_ST_RUNNING)
		vs->state = KVM_CARETAKER_VCPU_RUNNING;
	else
		vs->state = KVM_CARETAKER_VCPU_WAITING;
	return 0;
}

/**
 * caretaker_arch_kick() - send NMIs to the orphan's parked CPUs
 * @o: the orphan
 * @n: NMIs per CPU
 *
 * For tests (debugfs): the runtime must take each in its own handler and
 * go on running the guest.
 *
 * Context: process context, under the orphan's lock.
 * Return: 0, or -ENODEV if no CPU is parked.
 */
int caretaker_arch_kick(struct caretaker_orphan *o, unsigned int n)
{
	struct ct_x86_orphan *x = o->arch;
	unsigned int k;
	u32 i;

	if (!x || !x->rt)
		return -ENODEV;
	for (k = 0; k < n; k++) {
		for (i = 0; i < x->nr_vcpus; i++)
			ct_runtime_nmi(&x->rt->cpus[i]);
		usleep_range(1000, 2000);
	}
	return 0;
}

/**
 * caretaker_arch_ipi() - send a fixed interrupt to each parked CPU
 * @o: the orphan
 * @vector: the vector, 32 to 255
 *
 * What the host's stray and broadcast IPIs look like to the runtime: it
 * acknowledges them and the guest goes on.  For debugfs (tests).
 *
 * Context: process context, under the orphan's lock.
 * Return: 0, -EINVAL for a vector below 32, or -ENODEV if no CPU is parked.
 */
int caretaker_arch_ipi(struct caretaker_orphan *o, unsigned int vector)
{
	struct ct_x86_orphan *x = o->arch;
	u32 i;

	if (vector < FIRST_EXTERNAL_VECTOR || vector > 0xff)
		return -EINVAL;
	if (!x || !x->rt)
		return -ENODEV;
	for (i = 0; i < x->nr_vcpus; i++)
		if (x->rt->cpus[i].parked)
			apic->send_IPI(x->rt->cpus[i].cpu, vector);
	return 0;
}

/**
 * caretaker_arch_release() - stop the runtime, return the CPUs, free all
 * @o: the orphan
 *
 * Context: process context, may sleep.
 */
void caretaker_arch_release(struct caretaker_orphan *o)
{
	struct ct_x86_orphan *x = o->arch;

	if (!x)
		return;
	if (ct_runtime_destroy(x->rt)) {
		/* A CPU may still run the guest: leak what it could touch. */
		o->leaked = true;
		INIT_LIST_HEAD(&x->npt.pages);
		x->npt.nr_pages = 0;
	}
	x->rt = NULL;
	/* Keep the final telemetry of an adopted orphan for its fd. */
	if (o->state == KVM_CARETAKER_STATE_ATTACHED)
		return;
	ct_x86_free(x);
	o->arch = NULL;
}

/**
 * caretaker_arch_free() - free what caretaker_arch_release() kept
 * @o: the orphan, released
 *
 * Context: process context.
 */
void caretaker_arch_free(struct caretaker_orphan *o)
{
	caretaker_arch_release(o);
	if (o->arch)
		ct_x86_free(o->arch);
	o->arch = NULL;
}

struct ct_x86_ranges {
	struct caretaker_ser_buf *b;
	u32 nr;
};

static void ct_x86_add_range(void *arg, phys_addr_t pa, unsigned long nr_pages,
			     u32 kind, u32 index)
{
	struct ct_x86_ranges *r = arg;
	struct kvm_caretaker_range e = {
		.phys = pa, .nr_pages = nr_pages, .kind = kind, .index = index,
	};

	caretaker_ser_add(r->b, &e, sizeof(e));
	r->nr++;
}

static void ct_x86_serialize_vcpu(struct caretaker_orphan *o, struct ct_x86_orphan *x,
				  u32 i, struct caretaker_ser_buf *b, u64 rec_off)
{
	struct ct_x86_vcpu *xv = &x->vcpus[i];
	const struct kvm_x86_vcpu_state *s = &xv->state;
	struct ct_runtime_cpu *c = &x->rt->cpus[i];
	struct kvm_caretaker_state_x86 *st;
	struct kvm_caretaker_vcpu_x86 v = {
		.index = i,
		.vcpu_id = o->vcpu_ids[i],
		.phys_id = cpu_physical_id(o->cpus[i]),
		.tsc_khz = xv->tsc_khz,
		.flags = (xv->triple_fault ? KVM_CARETAKER_VCPU_TRIPLE_FAULT : 0) |
			 (xv->timer_pending ? KVM_CARETAKER_VCPU_TIMER_PENDING : 0) |
			 (xv->tsc_unscaled ? KVM_CARETAKER_VCPU_TSC_UNSCALED : 0),
		.cpuid_nent = xv->cpuid_nent,
		.nmsrs = s->nmsrs,
		.xsave_size = s->xsave_size,
		.cb_phys = ct_runtime_pa(c, CTRT_OFF_CB),
		.vmcb_phys = ct_runtime_pa(c, CTRT_OFF_VMCB),
	};
	void *rec;

	v.state_off = caretaker_ser_add(b, NULL, sizeof(*st));
	st = caretaker_ser_ptr(b, v.state_off);
	if (st) {
		st->regs = s->regs;
		st->sregs2 = s->sregs2;
		st->xcrs = s->xcrs;
		st->debugregs = s->debugregs;
		st->events = s->events;
		st->lapic = s->lapic;
		st->mp_state = s->mp_state;
		st->tsc_offset = s->tsc_offset;
	}
	v.msrs_off = caretaker_ser_add(b, s->msrs, s->nmsrs * sizeof(*s->msrs));
	v.xsave_off = caretaker_ser_add(b, s->xsave, s->xsave_size);
	v.cpuid_off = caretaker_ser_add(b, xv->cpuid, xv->cpuid_nent * sizeof(*xv->cpuid));
	rec = caretaker_ser_ptr(b, rec_off);
	if (rec)
		memcpy(rec, &v, sizeof(v));
}

/**
 * caretaker_arch_serialize() - the x86 part of an orphan's LUO data
 * @o: the orphan, detached; its lock held
 * @ser: the root, whose x86 fields this fills
 * @b: the variable part, which this extends
 *
 * The vCPUs' state as DETACH took it, where their live control blocks
 * and VMCBs are, and every page the runtime runs on (the nested page
 * table included), as <linux/kho/abi/kvm_caretaker.h> lays them out.
 * Called twice, see struct caretaker_ser_buf.
 *
 * Context: process context.
 * Return: 0.
 */
int caretaker_arch_serialize(struct caretaker_orphan *o, struct kvm_caretaker_ser *ser,
			     struct caretaker_ser_buf *b)
{
	struct ct_x86_orphan *x = o->arch;
	struct ct_x86_ranges r = { .b = b };
	struct page *page;
	u32 i;

	ser->features = KVM_CARETAKER_KHO_F_X86_SVM;
	ser->rt_abi = CTRT_ABI_VERSION;
	ser->irqchip_mode = x->irqchip_mode;
	ser->disabled_quirks = x->disabled_quirks;
	ser->x2apic_flags = (x->x2apic_format ? KVM_CARETAKER_X2APIC_FORMAT : 0) |
			    (x->x2apic_broadcast_quirk_disabled ?
			     KVM_CARETAKER_X2APIC_NO_BROADCAST_QUIRK : 0);
	ser->clock = x->clock;
	ser->tsc_khz = x->host_tsc_khz;
	ser->rt_cr3 = ct_pgtable_root_pa(&x->rt->pt);
	ser->npt_root = ct_pgtable_root_pa(&x->npt);

	ser->nr_vcpus = x->nr_vcpus;
	ser->vcpus_off = caretaker_ser_add(b, NULL,
					   x->nr_vcpus * sizeof(struct kvm_caretaker_vcpu_x86));
	for (i = 0; i < x->nr_vcpus; i++)
		ct_x86_serialize_vcpu(o, x, i, b, ser->vcpus_off +
				      i * sizeof(struct kvm_caretaker_vcpu_x86));

	/* The ranges last, one array. */
	ser->ranges_off = ALIGN(b->size, 8);
	ct_runtime_list_ranges(x->rt, ct_x86_add_range, &r);
	list_for_each_entry(page, &x->npt.pages, lru)
		ct_x86_add_range(&r, page_to_phys(page), 1, KVM_CARETAKER_RANGE_NPT_TABLE, 0);
	ser->nr_ranges = r.nr;
	return 0;
}

/* More than KVM_GET_MSR_INDEX_LIST has entries. */
#define CT_X86_MAX_MSRS		4096

static int ct_x86_incoming_vcpu(struct ct_x86_vcpu *xv, const struct kvm_caretaker_vcpu_x86 *v,
				const void *data, u64 data_size)
{
	const struct kvm_caretaker_state_x86 *st = data + v->state_off;
	struct kvm_x86_vcpu_state *s = &xv->state;
	size_t msrs = array_size(v->nmsrs, sizeof(*s->msrs));
	size_t cpuid = array_size(v->cpuid_nent, sizeof(*xv->cpuid));

	if (v->state_off > data_size || sizeof(*st) > data_size - v->state_off ||
	    v->msrs_off > data_size || msrs > data_size - v->msrs_off ||
	    v->xsave_off > data_size || v->xsave_size > data_size - v->xsave_off ||
	    v->cpuid_off > data_size || cpuid > data_size - v->cpuid_off ||
	    !v->xsave_size || v->xsave_size > CTRT_XSAVE_MAX ||
	    v->cpuid_nent > KVM_MAX_CPUID_ENTRIES || v->nmsrs > CT_X86_MAX_MSRS)
		return -EINVAL;
	s->regs = st->regs;
	s->sregs2 = st->sregs2;
	s->xcrs = st->xcrs;
	s->debugregs = st->debugregs;
	s->events = st->events;
	s->lapic = st->lapic;
	s->mp_state = st->mp_state;
	s->tsc_offset = st->tsc_offset;
	s->nmsrs = v->nmsrs;
	s->xsave_size = v->xsave_size;
	s->msrs = kvmemdup(data + v->msrs_off, msrs, GFP_KERNEL_ACCOUNT);
	s->xsave = kvmemdup(data + v->xsave_off, v->xsave_size, GFP_KERNEL_ACCOUNT);
	xv->cpuid = kmemdup(data + v->cpuid_off, cpuid, GFP_KERNEL_ACCOUNT);
	xv->cpuid_nent = v->cpuid_nent;
	xv->tsc_khz = v->tsc_khz;
	xv->triple_fault = v->flags & KVM_CARETAKER_VCPU_TRIPLE_FAULT;
	xv->timer_pending = v->flags & KVM_CARETAKER_VCPU_TIMER_PENDING;
	xv->tsc_unscaled = v->flags & KVM_CARETAKER_VCPU_TSC_UNSCALED;
	if (!s->msrs || !s->xsave || (cpuid && !xv->cpuid))
		return -ENOMEM;
	return 0;
}

static int ct_x86_range_cmp(const void *a, const void *b)
{
	const struct kvm_caretaker_range *ra = a, *rb = b;

	return ra->phys < rb->phys ? -1 : ra->phys > rb->phys;
}

/* No two ranges may overlap: restoring a page twice would trip KHO. */
static bool ct_x86_ranges_disjoint(const struct kvm_caretaker_range *r, u32 nr)
{
	struct kvm_caretaker_range *s;
	bool ok = true;
	u32 i;

	if (!nr)
		return true;
	s = kvmemdup(r, array_size(nr, sizeof(*r)), GFP_KERNEL);
	if (!s)
		return false;
	sort(s, nr, sizeof(*s), ct_x86_range_cmp, NULL);
	for (i = 0; ok && i < nr; i++)
		ok = s[i].nr_pages && s[i].nr_pages <= (U64_MAX - s[i].phys) >> PAGE_SHIFT &&
		     (i + 1 == nr || s[i].phys + (s[i].nr_pages << PAGE_SHIFT) <= s[i + 1].phys);
	kvfree(s);
	return ok;
}

/**
 * caretaker_arch_can_take() - does this module speak the previous
 *	kernel's runtime ABI?
 * @ser: the orphan's serialized root, as the previous kernel left it
 *
 * The new kernel only talks to the running runtime through its control
 * block, so the block's version must be this module's.
 *
 * Context: any context.
 * Return: true if caretaker_arch_incoming() may take the orphan.
 */
bool caretaker_arch_can_take(const struct kvm_caretaker_ser *ser)
{
	return ser->rt_abi == CTRT_ABI_VERSION;
}

/**
 * caretaker_arch_incoming() - the x86 part of an orphan the previous kernel left
 * @o: the orphan being rebuilt: its CPUs, vCPU ids and memslots set
 * @ser: its serialized root
 * @data: its serialized variable part, @ser->data_size bytes
 *
 * Rebuilds the vCPUs' state as DETACH took it and the runtime instance
 * around the pages it runs on, restored from KHO; the runtime runs on
 * untouched until ATTACH stops it.
 *
 * Context: process context, may sleep.
 * Return: CARETAKER_OK, or a refusal (the guest keeps running).
 */
struct caretaker_refusal caretaker_arch_incoming(struct caretaker_orphan *o,
						 const struct kvm_caretaker_ser *ser,
						 const void *data)
{
	const struct kvm_caretaker_vcpu_x86 *v = data + ser->vcpus_off;
	const struct kvm_caretaker_range *r = data + ser->ranges_off;
	struct ct_x86_orphan *x;
	struct ct_runtime *rt;
	struct page *page;
	u32 i;
	int ret;

	if (ser->rt_abi != CTRT_ABI_VERSION)
		return CARETAKER_REFUSE(-EOPNOTSUPP,
					"the previous kernel's runtime has another control block version");
	if (ser->nr_vcpus != o->nr_vcpus ||
	    ser->vcpus_off > ser->data_size ||
	    array_size(ser->nr_vcpus, sizeof(*v)) > ser->data_size - ser->vcpus_off ||
	    ser->ranges_off > ser->data_size ||
	    array_size(ser->nr_ranges, sizeof(*r)) > ser->data_size - ser->ranges_off)
		return CARETAKER_REFUSE(-EINVAL, "the serialized orphan is malformed");

	x = ct_x86_alloc(o);
	if (!x)
		return CARETAKER_REFUSE(-ENOMEM, "out of memory");
	x->clock = ser->clock;
	x->host_tsc_khz = ser->tsc_khz;
	x->irqchip_mode = ser->irqchip_mode;
	x->disabled_quirks = ser->disabled_quirks;
	x->x2apic_format = ser->x2apic_flags & KVM_CARETAKER_X2APIC_FORMAT;
	x->x2apic_broadcast_quirk_disabled =
		ser->x2apic_flags & KVM_CARETAKER_X2APIC_NO_BROADCAST_QUIRK;
	for (i = 0; i < o->nr_vcpus; i++) {
		if (v[i].index != i || v[i].xsave_size != v[0].xsave_size)
			return CARETAKER_REFUSE(-EINVAL, "the serialized orphan is malformed");
		o->vcpu_ids[i] = v[i].vcpu_id;
		ret = cpu_park_kho_claim(v[i].phys_id);
		if (ret < 0)
			return CARETAKER_REFUSE(-ENODEV, "a CPU of the orphan was not handed over");
		o->cpus[i] = ret;
		ret = ct_x86_incoming_vcpu(&x->vcpus[i], &v[i], data, ser->data_size);
		if (ret)
			return CARETAKER_REFUSE(ret, "a serialized vCPU could not be read");
	}

	if (!ct_x86_ranges_disjoint(r, ser->nr_ranges))
		return CARETAKER_REFUSE(-EINVAL, "the serialized orphan is malformed");
	rt = ct_runtime_adopt(o->nr_vcpus, o->cpus, v[0].xsave_size, ser->rt_cr3, r,
			      ser->nr_ranges);
	if (IS_ERR(rt))
		return CARETAKER_REFUSE(PTR_ERR(rt), "the runtime could not be taken over");
	x->rt = rt;
	for (i = 0; i < ser->nr_ranges; i++) {
		if (r[i].kind != KVM_CARETAKER_RANGE_NPT_TABLE)
			continue;
		page = r[i].nr_pages == 1 ? kho_restore_pages(r[i].phys, 1) : NULL;
		if (!page)
			return CARETAKER_REFUSE(-EINVAL, "the nested page table is not in KHO");
		list_add_tail(&page->lru, &x->npt.pages);
		x->npt.nr_pages++;
		if (r[i].phys == ser->npt_root)
			x->npt.root = page_address(page);
	}
	if (!x->npt.root)
		return CARETAKER_REFUSE(-EINVAL, "the nested page table has no root");
	for (i = 0; i < o->nr_vcpus; i++)
		if (ct_runtime_pa(&rt->cpus[i], CTRT_OFF_CB) != v[i].cb_phys ||
		    ct_runtime_pa(&rt->cpus[i], CTRT_OFF_VMCB) != v[i].vmcb_phys)
			return CARETAKER_REFUSE(-EINVAL, "the serialized orphan is malformed");
	return CARETAKER_OK;
}

/**
 * caretaker_arch_abandon() - drop an incoming orphan that cannot be adopted
 * @o: the orphan, caretaker_arch_incoming() refused
 *
 * Frees what describes it and nothing it runs on: the runtime's and the
 * nested page table's pages stay allocated and the CPUs parked, so the
 * guest runs on.
 *
 * Context: process context.
 */
void caretaker_arch_abandon(struct caretaker_orphan *o)
{
	struct ct_x86_orphan *x = o->arch;
	u32 i;

	if (!x)
		return;
	for (i = 0; i < x->nr_vcpus; i++)
		ct_x86_vcpu_free(&x->vcpus[i]);
	kfree(x->rt);
	kfree(x);
	o->arch = NULL;
}
