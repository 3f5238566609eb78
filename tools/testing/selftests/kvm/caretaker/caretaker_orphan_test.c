// SPDX-License-Identifier: GPL-2.0-only
/*
 * An orphaned VM: its guest keeps running on parked physical CPUs while
 * no VMM exists, and a new VMM process adopts it.
 *
 * Three processes take part in most cases:
 *
 *  - VMM A builds a VM (opted in, memfd-backed), runs it, prepares it
 *    (KVM_CARETAKER_PREPARE), detaches its vCPUs (KVM_CARETAKER_DETACH),
 *    hands the caretaker fd, the memfds and what a new VMM needs to know
 *    over a unix socket (SCM_RIGHTS), and exits (or is SIGKILLed).
 *  - The holder (the case's own process) keeps the caretaker fd and
 *    watches the guest through its own mapping of the memfd.
 *  - VMM B, forked from the holder, so it has none of VMM A's library
 *    state, builds a matching VM without writing guest memory and adopts
 *    the orphan (KVM_CARETAKER_ATTACH).
 *
 * While detached, every guest exit blocks the vCPU until ATTACH, so the
 * guest is a loop without exiting instructions: it counts, stores RDTSC
 * (not intercepted), and looks at a command word the host writes.  Only
 * on command does it exit (OUT to a port, or CPUID).  No ucalls: VMM B
 * does not know VMM A's ucall state, and nothing may run while detached.
 *
 * Every wait is bounded; the test host is QEMU TCG, where the guest loop
 * makes roughly 1-20 M iterations per second.  Each case runs in a child
 * process, so a failed assertion fails that case only.
 *
 * Two more modes, run only when named, measure rather than test: `bench`
 * (caretaker and classic VMM restarts, interleaved, a table) and `demo`
 * (one of each, with the guest's progress printed as it happens).  See
 * "bench and demo" below.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/futex.h>
#include <linux/kexec.h>
#include <linux/kvm_caretaker.h>
#include <linux/liveupdate.h>
#include <linux/reboot.h>
#include <asm/svm.h>

#include "kvm_util.h"
#include "apic.h"
#include "hyperv.h"
#include "processor.h"

#include "caretaker_util.h"

#ifndef KVM_EXIT_CARETAKER
#define KVM_EXIT_CARETAKER	44	/* until the installed linux/kvm.h has it */
#endif

#define CT_MAX_VCPUS	2
#define CT_MAX_SLOTS	4
#define CT_MAX_CPUID	128
#define CT_MAX_MSRS	512
#define CT_MAX_XSAVE	8192

/* The physical CPUs the orphans run on: never CPU 0, the boot CPU. */
static const __u32 ct_cpus[CT_MAX_VCPUS] = { 1, 2 };

/* A memslot that PREPARE must freeze; memfd-backed, so the VM still qualifies. */
#define CT_SCRATCH_SLOT	10
#define CT_SCRATCH_GPA	BIT_ULL(32)

/* ---- time limits: generous, the test host is TCG ---- */

#define CT_GAP_MS		2000	/* the detached period of the main cases */
#define CT_SHORT_GAP_MS		500	/* ... of the cases about something else */
#define CT_WAIT_MS		10000	/* anything that should happen promptly */
#define CT_CHILD_MS		120000	/* a VMM process from fork to exit */
#define CT_STILL_MS		500	/* how long a stopped guest must stay stopped */
#define CT_SAMPLE_MS		20
#define CT_MAX_STALL_MS		1000	/* TCG runs vCPUs round-robin, 100 ms slices */
/* The slowest loop seen is 1 M/s: 5000/s leaves a factor of 200. */
#define CT_MIN_BEATS_PER_S	5000
#define CT_BEATS_ALIVE		100	/* enough to say "it runs" */

/* CT_CHILD_MS, raised by bench and demo by the time they keep a VMM waiting. */
static int ct_child_ms = CT_CHILD_MS;

/* ---- the guest ---- */

#define CT_PORT		0x80
#define CT_MARKER	0xc7

enum {
	CT_CMD_NONE,
	CT_CMD_OUT,	/* OUT CT_MARKER to CT_PORT */
	CT_CMD_CPUID,	/* CPUID(0) into @cpuid */
	CT_CMD_SHUTDOWN,	/* an empty IDT and an exception: triple fault */
	CT_CMD_CPUID_SET,	/* guest_cpuid_set() into the CPUID log */
	CT_CMD_MASKED_TIMER,	/* guest_apic_cmds(): a masked timer expires */
	CT_CMD_TPR,		/* ... a self IPI below TPR, then TPR drops */
	CT_CMD_UNSAFE_MSR,	/* ... WRMSR and RDMSR of SYSENTER_CS */
	CT_CMD_MEASURE,		/* ... median cycles of CPUID, TPR read, timer lateness */
	CT_CMD_KERNEL_GS,	/* WRMSR CT_KERNEL_GS to KERNEL_GS_BASE: no exit, also detached */
};

#define CT_KERNEL_GS	0xffff8880c0ffee00ull

/* One per vCPU in the heartbeat page; VMMs and the holder see it via the memfd. */
struct ct_beat {
	__u64 counter;		/* guest: loop iterations */
	__u64 tsc;		/* guest: RDTSC of the last iteration */
	__u64 command;		/* host: CT_CMD_*; the guest clears it */
	__u64 done;		/* guest: commands carried out */
	__u32 cpuid[4];		/* guest: EAX, EBX, ECX, EDX of CPUID(0) */
	__u64 irqs;		/* guest: CT_IRQ_VECTOR interrupts taken */
	__u64 spin_cpuid;	/* host: guest_apic_cmds() loops on CPUID */
};

static_assert(sizeof(struct ct_beat) == 64, "one cache line per vCPU");

/*
 * cpuid_in_gap: the answers to a fixed sequence of CPUIDs, once while
 * detached (pass 0, the runtime answers) and once adopted (pass 1, KVM
 * answers), in the heartbeat page after the beats.  Between the leaves
 * the guest changes XCR0 and CR4.OSXSAVE, which KVM's answers follow.
 */
#define CT_CPUID_Q	18
#define CT_CPUID_LOG_OFF	1024

struct ct_cpuid_log {
	__u32 r[2][CT_CPUID_Q][4];
	__u64 pass;		/* host: which half the next sequence fills */
	__u64 cpuids[2];	/* guest: CPUIDs it executed, per pass */
	__u64 xsetbvs[2];	/* guest: XSETBVs it executed, per pass */
};

static_assert(CT_CPUID_LOG_OFF + sizeof(struct ct_cpuid_log) <= 4096, "one page");

static void guest_cpuid_one(struct ct_cpuid_log *l, __u64 p, __u32 *n, __u32 fn,
			    __u32 idx)
{
	__u32 *r = l->r[p][*n];

	__cpuid(fn, idx, &r[0], &r[1], &r[2], &r[3]);
	(*n)++;
	l->cpuids[p]++;
}

static void guest_xsetbv(struct ct_cpuid_log *l, __u64 p, __u64 xcr0)
{
	xsetbv(0, xcr0);
	l->xsetbvs[p]++;
}

static void guest_cpuid_set(struct ct_beat *beat)
{
	static const __u32 q[][2] = {
		{ 0, 0 }, { 1, 0 }, { 7, 0 }, { 0xd, 0 }, { 0xd, 1 }, { 0xd, 2 },
		{ 0x80000000, 0 }, { 0x80000001, 0 }, { 0x80000008, 0 },
		{ 0x40000000, 0 }, { 0x8fffffff, 0 }, { 0xb, 0x105 }, { 0x1f, 3 },
	};
	struct ct_cpuid_log *l = (void *)((char *)beat + CT_CPUID_LOG_OFF);
	__u64 p = READ_ONCE(l->pass), xcr0 = xgetbv(0), full, cr4;
	__u32 i, n = 0, a, b, c, d;

	for (i = 0; i < ARRAY_SIZE(q); i++)
		guest_cpuid_one(l, p, &n, q[i][0], q[i][1]);
	/* CPUID.0xD.0 EBX follows XCR0: x87, SSE and AVX if there is AVX... */
	__cpuid(1, 0, &a, &b, &c, &d);
	l->cpuids[p]++;
	full = (c & (1u << 28)) ? 0x7 : 0x3;
	guest_xsetbv(l, p, full);
	guest_cpuid_one(l, p, &n, 0xd, 0);
	/* ... x87 alone ... */
	guest_xsetbv(l, p, 0x1);
	guest_cpuid_one(l, p, &n, 0xd, 0);
	guest_cpuid_one(l, p, &n, 1, 0);
	guest_xsetbv(l, p, xcr0);
	/* ... and CPUID.1 ECX.OSXSAVE follows CR4. */
	cr4 = get_cr4();
	set_cr4(cr4 & ~X86_CR4_OSXSAVE);
	guest_cpuid_one(l, p, &n, 1, 0);
	set_cr4(cr4);
	guest_cpuid_one(l, p, &n, 0xd, 0);
	GUEST_ASSERT_EQ(n, CT_CPUID_Q);
}

static void guest_heartbeat(struct ct_beat *beat)
{
	u32 eax, ebx, ecx, edx;
	u64 cmd;

	for (;;) {
		WRITE_ONCE(beat->counter, READ_ONCE(beat->counter) + 1);
		WRITE_ONCE(beat->tsc, rdtsc());
		cmd = READ_ONCE(beat->command);
		if (cmd == CT_CMD_NONE)
			continue;
		WRITE_ONCE(beat->command, CT_CMD_NONE);
		if (cmd == CT_CMD_OUT) {
			__asm__ __volatile__("outb %%al, %%dx"
					     : : "a"((u8)CT_MARKER), "d"((u16)CT_PORT));
		} else if (cmd == CT_CMD_SHUTDOWN) {
			static const struct desc_ptr empty;

			__asm__ __volatile__("lidt %0; ud2" : : "m"(empty));
		} else if (cmd == CT_CMD_CPUID_SET) {
			guest_cpuid_set(beat);
		} else if (cmd == CT_CMD_KERNEL_GS) {
			wrmsr(MSR_KERNEL_GS_BASE, CT_KERNEL_GS);
		} else if (cmd == CT_CMD_CPUID) {
			cpuid(0, &eax, &ebx, &ecx, &edx);
			WRITE_ONCE(beat->cpuid[0], eax);
			WRITE_ONCE(beat->cpuid[1], ebx);
			WRITE_ONCE(beat->cpuid[2], ecx);
			WRITE_ONCE(beat->cpuid[3], edx);
		}
		WRITE_ONCE(beat->done, READ_ONCE(beat->done) + 1);
	}
}

/*
 * irqfd_in_gap: the VMMs route an irqfd's GSI to vCPU 0's local APIC as
 * an MSI of this vector (fixed, edge).
 */
#define CT_IRQ_VECTOR	0xe0
#define CT_IRQ_GSI	24	/* past the IOAPIC's pins */
#define CT_IRQ_SIGNALS	3	/* sent while detached: one edge under VMM B */
#define CT_IRQ_SETTLE_MS	300

/* The heartbeat of the vCPU that takes the interrupts (only one does). */
static struct ct_beat *ct_irq_beat;

/*
 * EOI (an exit) before the count: once VMM A sees the count move, the
 * guest is done with exits, and DETACH finds it in the loop.
 *
 * The local APIC is in x2APIC mode, the EOI a WRMSR.  An xAPIC EOI is an
 * MMIO write KVM emulates, and on this test host it failed once in about
 * twelve runs with KVM_EXIT_INTERNAL_ERROR (KVM_INTERNAL_ERROR_DELIVERY_EV,
 * the #NPF at 0xfee000b0) in the handler of the first interrupt after
 * ATTACH.  As far as we can tell a test host quirk: QEMU's TCG SVM keeps
 * the type of the last event it delivered in EVENTINJ with V clear and
 * copies it into EXITINTINFO at the next #VMEXIT, and KVM's check for an
 * MMIO access during event delivery (svm_check_emulate_instruction())
 * tests the type bits, not V.
 */
static void guest_irq_handler(struct ex_regs *regs)
{
	x2apic_write_reg(APIC_EOI, 0);
	WRITE_ONCE(ct_irq_beat->irqs, READ_ONCE(ct_irq_beat->irqs) + 1);
}

/*
 * guest_heartbeat() with the local APIC on and interrupts enabled.  The
 * loop still makes no exit: only the handler does, and the runtime
 * delivers no interrupt while detached.
 */
static void guest_heartbeat_irq(struct ct_beat *beat)
{
	ct_irq_beat = beat;
	x2apic_enable();
	sti();
	guest_heartbeat(beat);
}

/*
 * timer_*: the guest's own tick.  The guest arms its x2APIC timer (one
 * mode per test), HLTs in a loop and, in the handler, checks each tick
 * against the earliest time it may come, then arms the next one.  The
 * log sits in the heartbeat page after the CPUID log.
 */
#define CT_TIMER_VECTOR		0xe5
#define CT_TIMER_LOG_OFF	2048
#define CT_TIMER_PERIOD_US	2000
#define CT_LATE_BUCKETS		16
/*
 * On this test host an interrupt is now and then delivered twice, under
 * KVM and under the runtime alike, and under KVM on CPUs the caretaker
 * never had (upstream's xapic_tpr_test: tests/kvm-regression.list); how
 * QEMU's nested SVM comes to it is not known.  A tick that enters the
 * handler while the handler runs, before its EOI and with RFLAGS.IF
 * clear, is such a second delivery, however late it comes: no APIC
 * delivers a vector that is in service.  So is a tick while the one-shot
 * or TSC-deadline timer still counts towards its next expiry, and a tick
 * within this long of the previous one.  All count as doubled, not
 * early, and are bounded.
 */
#define CT_DOUBLE_US		50

enum { CT_TM_ONESHOT, CT_TM_PERIODIC, CT_TM_TSCDL };

struct ct_timer_log {
	__u64 mode;		/* host: CT_TM_* */
	__u64 period_tsc;	/* host: the period in guest TSC cycles */
	__u64 period_count;	/* host: ... in APIC timer counts (divide by 1) */
	__u64 tsc_per_us;	/* host */
	__u64 deadline;		/* guest: the earliest the next tick may come */
	__u64 ticks;		/* guest: timer interrupts */
	__u64 early;		/* guest: ticks before their deadline */
	__u64 doubled;		/* guest: ticks within CT_DOUBLE_US of the last one */
	__u64 last_tsc;		/* guest: TSC at the last tick */
	__u64 max_late;		/* guest: TSC cycles, the latest tick */
	__u64 collapsed;	/* guest: periodic: periods that went by untaken */
	__u64 late[CT_LATE_BUCKETS];	/* guest: lateness, bucket i < 2^i us */
	__u64 seq;		/* guest: odd while the handler runs */
	__u64 early_by;		/* guest: TSC cycles, the last early tick */
	__u64 early_gap;	/* guest: ... and its distance from the tick before */
};

static_assert(CT_TIMER_LOG_OFF + sizeof(struct ct_timer_log) <= 4096, "one page");

static struct ct_timer_log *ct_tl;

static void guest_timer_arm(struct ct_timer_log *tl)
{
	__u64 now = rdtsc();

	tl->deadline = now + tl->period_tsc;
	if (tl->mode == CT_TM_TSCDL)
		wrmsr(MSR_IA32_TSC_DEADLINE, tl->deadline);
	else
		x2apic_write_reg(APIC_TMICT, tl->period_count);
}

static void guest_timer_handler(struct ex_regs *regs)
{
	struct ct_timer_log *tl = ct_tl;
	__u64 now = rdtsc(), late, us, armed = 0;
	int b = 0;

	if (tl->seq & 1) {
		/* The outer handler's EOI is this vector's only one. */
		tl->doubled++;
		WRITE_ONCE(tl->ticks, tl->ticks + 1);
		return;
	}
	WRITE_ONCE(tl->seq, tl->seq + 1);
	/*
	 * A periodic timer's schedule is its APIC's, and KVM's runs on the
	 * host's clock, which drifts from the TSC: the guest cannot know the
	 * exact phase of the schedule it inherits, and after a late tick the
	 * next one comes sooner.  So periodic ticks are checked by their
	 * count over a window (the host does: elapsed TSC / period, +-1) and
	 * for doubles; one-shot and TSC-deadline ticks, which the runtime
	 * times the same way, are checked against their deadline exactly.
	 */
	/*
	 * Periods that went by while a tick was still pending collapse into
	 * one, as on any APIC (this test host deschedules a vCPU for
	 * milliseconds now and then): counted by the gap since the last tick.
	 */
	if (tl->mode == CT_TM_PERIODIC && tl->last_tsc &&
	    now - tl->last_tsc > tl->period_tsc + tl->period_tsc / 2)
		tl->collapsed += (now - tl->last_tsc + tl->period_tsc / 2) / tl->period_tsc - 1;
	/*
	 * A one-shot or TSC-deadline timer that expired reads back 0 (TMCCT,
	 * IA32_TSC_DEADLINE) until it is armed again: one that still counts
	 * did not send this tick, the last tick came again (above).
	 */
	if (tl->mode == CT_TM_ONESHOT)
		armed = x2apic_read_reg(APIC_TMCCT);
	else if (tl->mode == CT_TM_TSCDL)
		armed = rdmsr(MSR_IA32_TSC_DEADLINE);
	if (tl->mode == CT_TM_PERIODIC)
		tl->deadline = 0;
	if (armed || (tl->last_tsc && now - tl->last_tsc < CT_DOUBLE_US * tl->tsc_per_us)) {
		tl->doubled++;
	} else if (now < tl->deadline) {
		tl->early++;
		tl->early_by = tl->deadline - now;
		tl->early_gap = now - tl->last_tsc;
	} else if (tl->deadline) {
		late = now - tl->deadline;
		if (late > tl->max_late)
			tl->max_late = late;
		for (us = late / tl->tsc_per_us; us && b < CT_LATE_BUCKETS - 1; us >>= 1)
			b++;
		tl->late[b]++;
	}
	tl->last_tsc = now;
	WRITE_ONCE(tl->ticks, tl->ticks + 1);
	if (tl->mode != CT_TM_PERIODIC)
		guest_timer_arm(tl);
	x2apic_write_reg(APIC_EOI, 0);
	WRITE_ONCE(tl->seq, tl->seq + 1);
}

static void guest_timer(struct ct_beat *beat)
{
	struct ct_timer_log *tl = (void *)((char *)beat + CT_TIMER_LOG_OFF);
	static const __u32 lvtt[] = {
		[CT_TM_ONESHOT] = APIC_LVT_TIMER_ONESHOT,
		[CT_TM_PERIODIC] = APIC_LVT_TIMER_PERIODIC,
		[CT_TM_TSCDL] = APIC_LVT_TIMER_TSCDEADLINE,
	};

	ct_tl = tl;
	x2apic_enable();
	x2apic_write_reg(APIC_TDCR, 0xb);	/* divide by 1 */
	x2apic_write_reg(APIC_LVTT, lvtt[tl->mode] | CT_TIMER_VECTOR);
	guest_timer_arm(tl);
	for (;;) {
		WRITE_ONCE(beat->counter, READ_ONCE(beat->counter) + 1);
		WRITE_ONCE(beat->tsc, rdtsc());
		asm volatile("sti; hlt; cli" ::: "memory");
	}
}

/*
 * apic_in_gap: the guest's APIC under the runtime, one command at a time;
 * results in the beat's cpuid[] words.  Interrupts are enabled; vector
 * CT_IRQ_VECTOR counts into the beat's irqs.
 */
#define CT_UNSAFE_MSR_VAL	0x1234

static void guest_spin_us(__u64 tsc_per_us, __u64 us)
{
	__u64 end = rdtsc() + us * tsc_per_us;

	while (rdtsc() < end)
		cpu_relax();
}

#define CT_MEASURE_N	64

static void guest_sort(__u64 *v, int n)
{
	int i, j;
	__u64 x;

	for (i = 1; i < n; i++) {
		x = v[i];
		for (j = i; j > 0 && v[j - 1] > x; j--)
			v[j] = v[j - 1];
		v[j] = x;
	}
}

/*
 * Median cycles of a CPUID(0) and of an x2APIC TPR read (RDMSR 0x808),
 * RDTSC to RDTSC; and the median and largest lateness of a 500 us one-shot
 * timer taken from HLT, in us.  Into cpuid[0..3].
 */
static void guest_measure(struct ct_beat *beat, __u64 tsc_per_us)
{
	static __u64 v[CT_MEASURE_N];
	__u32 a, b, c, d;
	__u64 t, dl, irqs;
	int i;

	for (i = 0; i < CT_MEASURE_N; i++) {
		t = rdtsc();
		__cpuid(0, 0, &a, &b, &c, &d);
		v[i] = rdtsc() - t;
	}
	guest_sort(v, CT_MEASURE_N);
	beat->cpuid[0] = v[CT_MEASURE_N / 2];
	for (i = 0; i < CT_MEASURE_N; i++) {
		t = rdtsc();
		x2apic_read_reg(APIC_TASKPRI);
		v[i] = rdtsc() - t;
	}
	guest_sort(v, CT_MEASURE_N);
	beat->cpuid[1] = v[CT_MEASURE_N / 2];
	x2apic_write_reg(APIC_LVTT, CT_IRQ_VECTOR);
	for (i = 0; i < CT_MEASURE_N; i++) {
		irqs = READ_ONCE(beat->irqs);
		dl = rdtsc() + 500 * tsc_per_us;
		x2apic_write_reg(APIC_TMICT, 500000);
		while (READ_ONCE(beat->irqs) == irqs)
			asm volatile("sti; hlt; cli" ::: "memory");
		t = rdtsc();
		v[i] = t > dl ? (t - dl) / tsc_per_us : 0;
	}
	sti();
	x2apic_write_reg(APIC_LVTT, APIC_LVT_MASKED | CT_IRQ_VECTOR);
	guest_sort(v, CT_MEASURE_N);
	beat->cpuid[2] = v[CT_MEASURE_N / 2];
	beat->cpuid[3] = v[CT_MEASURE_N - 1];
}

static void guest_apic_cmds(struct ct_beat *beat)
{
	struct ct_timer_log *tl = (void *)((char *)beat + CT_TIMER_LOG_OFF);
	__u64 cmd, irqs;

	ct_irq_beat = beat;
	x2apic_enable();
	x2apic_write_reg(APIC_TDCR, 0xb);
	sti();
	for (;;) {
		WRITE_ONCE(beat->counter, READ_ONCE(beat->counter) + 1);
		WRITE_ONCE(beat->tsc, rdtsc());
		if (READ_ONCE(beat->spin_cpuid)) {
			__u32 a, b, c, d;

			__cpuid(0, 0, &a, &b, &c, &d);
		}
		cmd = READ_ONCE(beat->command);
		if (cmd == CT_CMD_NONE)
			continue;
		WRITE_ONCE(beat->command, CT_CMD_NONE);
		irqs = READ_ONCE(beat->irqs);
		if (cmd == CT_CMD_MEASURE) {
			guest_measure(beat, tl->tsc_per_us);
		} else if (cmd == CT_CMD_MASKED_TIMER) {
			/* 100 us, masked: nothing in 2 ms. */
			x2apic_write_reg(APIC_LVTT, APIC_LVT_MASKED | CT_IRQ_VECTOR);
			x2apic_write_reg(APIC_TMICT, 100000);
			guest_spin_us(tl->tsc_per_us, 2000);
			beat->cpuid[0] = READ_ONCE(beat->irqs) - irqs;
			beat->cpuid[1] = x2apic_read_reg(APIC_TMCCT);
			x2apic_write_reg(APIC_TMICT, 0);
		} else if (cmd == CT_CMD_TPR) {
			/* Class 0xe below TPR 0xf0: pending until TPR drops. */
			x2apic_write_reg(APIC_TASKPRI, 0xf0);
			x2apic_write_reg(APIC_SELF_IPI, CT_IRQ_VECTOR);
			guest_spin_us(tl->tsc_per_us, 2000);
			beat->cpuid[0] = READ_ONCE(beat->irqs) - irqs;
			beat->cpuid[2] = x2apic_read_reg(APIC_IRR + (CT_IRQ_VECTOR / 32) * 0x10);
			x2apic_write_reg(APIC_TASKPRI, 0);
			guest_spin_us(tl->tsc_per_us, 100);
			beat->cpuid[1] = READ_ONCE(beat->irqs) - irqs;
		} else if (cmd == CT_CMD_UNSAFE_MSR) {
			wrmsr(MSR_IA32_SYSENTER_CS, CT_UNSAFE_MSR_VAL);
			beat->cpuid[0] = rdmsr(MSR_IA32_SYSENTER_CS);
		}
		WRITE_ONCE(beat->done, READ_ONCE(beat->done) + 1);
	}
}

/*
 * bench and demo: the epochs of one run, in order.  The host writes the
 * current one into the guest's trail; the guest counts into it.  A
 * classic restart uses WARMUP, QUIET, ABSENCE and AFTER only.
 */
enum ct_epoch {
	CT_EP_WARMUP,	/* VMM A builds and starts the VM, saves its vCPU */
	CT_EP_QUIET,	/* T with no event at all: the noise floor */
	CT_EP_PREPARE,	/* PREPARE and CT_AROUND_MS after it */
	CT_EP_DETACH,	/* DETACH, CT_AROUND_MS either side */
	CT_EP_EXIT,	/* VMM A hands over and exits */
	CT_EP_ABSENCE,	/* T with no VMM (classic: pause, save, exit, T, restore, run) */
	CT_EP_BUILD,	/* VMM B builds its VM; the guest is still detached */
	CT_EP_ATTACH,	/* ATTACH, CT_AROUND_MS either side */
	CT_EP_AFTER,	/* under VMM B */
	CT_NR_EPOCHS,
};

#define CT_GAP_BINS	48
#define CT_TOP_GAPS	8

/* What the guest saw of one epoch, in its own TSC cycles. */
struct ct_epoch_stats {
	__u64 iters;
	__u64 first_tsc;
	__u64 last_tsc;
	__u64 hist[CT_GAP_BINS];	/* gaps by floor(log2(cycles)) */
	/*
	 * The longest gaps between two iterations, longest first, each with
	 * the TSC that ended it: top[0] is the epoch's longest gap.
	 */
	struct {
		__u64 len, end;
	} top[CT_TOP_GAPS];
};

/* (TSC, counter) pairs the guest keeps, one every ring_every cycles. */
#define CT_TRAIL_RING	512

/* The guest's own record of its progress, in its memory. */
struct ct_trail {
	struct ct_beat beat;		/* counter and TSC, as guest_heartbeat() keeps */
	__u64 epoch;			/* host: the epoch the guest counts into */
	__u64 ring_every;		/* host: cycles between samples, 0: none */
	__u64 ring_head;		/* samples written so far */
	__u64 pad[5];
	struct ct_epoch_stats ep[CT_NR_EPOCHS];
	struct {
		__u64 tsc, counter;
	} ring[CT_TRAIL_RING];
};

#define CT_TRAIL_PAGES	4
static_assert(sizeof(struct ct_trail) <= CT_TRAIL_PAGES * 4096, "the trail's pages");

/*
 * The guest of bench and demo: memory accesses and RDTSC only, nothing
 * that exits, so that it runs on while detached.  A stall of any kind
 * (the VMM's, the caretaker's, the host's) is a gap between two
 * iterations, seen in the guest's own TSC.
 */
static void guest_trail(struct ct_trail *tr)
{
	struct ct_epoch_stats *s;
	u64 t, d, e, every, h, last = 0, sampled = 0;
	unsigned int bin, k;

	for (;;) {
		t = rdtsc();
		e = min_t(u64, READ_ONCE(tr->epoch), CT_NR_EPOCHS - 1);
		s = &tr->ep[e];
		if (!s->iters)
			WRITE_ONCE(s->first_tsc, t);
		WRITE_ONCE(s->iters, s->iters + 1);
		WRITE_ONCE(s->last_tsc, t);
		if (last) {
			d = t - last;
			bin = min_t(unsigned int, 63 - __builtin_clzll(d | 1), CT_GAP_BINS - 1);
			WRITE_ONCE(s->hist[bin], s->hist[bin] + 1);
			if (d > s->top[CT_TOP_GAPS - 1].len) {
				for (k = CT_TOP_GAPS - 1; k && d > s->top[k - 1].len; k--) {
					WRITE_ONCE(s->top[k].len, s->top[k - 1].len);
					WRITE_ONCE(s->top[k].end, s->top[k - 1].end);
				}
				WRITE_ONCE(s->top[k].len, d);
				WRITE_ONCE(s->top[k].end, t);
			}
		}
		last = t;
		WRITE_ONCE(tr->beat.counter, tr->beat.counter + 1);
		WRITE_ONCE(tr->beat.tsc, t);
		every = READ_ONCE(tr->ring_every);
		if (every && t - sampled >= every) {
			h = tr->ring_head;
			tr->ring[h % CT_TRAIL_RING].tsc = t;
			tr->ring[h % CT_TRAIL_RING].counter = tr->beat.counter;
			WRITE_ONCE(tr->ring_head, h + 1);
			sampled = t;
		}
	}
}

/* ---- what VMM A hands over with the caretaker fd and the memfds ---- */

struct ct_slot {
	__u32 slot;
	__u32 flags;
	__u64 gpa;
	__u64 size;
	__u64 offset;		/* of the memslot in its memfd */
};

/* A vCPU as VMM A last saw it, paused, after PREPARE and before DETACH. */
struct ct_vcpu_state {
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_debugregs debugregs;
	struct kvm_xcrs xcrs;
	struct kvm_vcpu_events events;
	struct kvm_mp_state mp_state;
	struct kvm_lapic_state lapic;
	__u64 tsc_offset;	/* KVM_VCPU_TSC_OFFSET */
	__u32 tsc_khz;
	__u32 nr_cpuid;
	struct kvm_cpuid_entry2 cpuid[CT_MAX_CPUID];
	__u32 nr_msrs;
	struct kvm_msr_entry msrs[CT_MAX_MSRS];
	__u32 xsave_size;		/* only a classic restart restores it */
	__u32 xsave[CT_MAX_XSAVE / 4];
};

struct ct_handover {
	__u32 nr_vcpus;
	__u32 nr_slots;
	__u32 vcpu_ids[CT_MAX_VCPUS];	/* in creation order */
	struct ct_slot slots[CT_MAX_SLOTS];	/* memfd i backs slots[i] */
	__u64 beat_gpa;			/* the heartbeat page */
	__u32 nr_eventfds;		/* 1: an irqfd's eventfd follows the memfds */
	struct kvm_clock_data clock;	/* KVM_GET_CLOCK as VMM A saved the vCPUs */
	struct ct_vcpu_state state[CT_MAX_VCPUS];
};

/* The holder's view of an orphan. */
struct ct_orphan {
	struct ct_handover h;
	int ct_fd;
	int memfds[CT_MAX_SLOTS];
	int eventfd;			/* an irqfd's, or -1 */
	struct ct_beat *beats;		/* the holder's own mapping */
	__u64 last_tsc[CT_MAX_VCPUS];	/* guest TSC last seen while detached */
	struct ct_figures *fig;		/* shared with VMM B */
	struct ct_run_log *log;		/* bench and demo: shared with VMM B */
};

/* Measured by VMM B, printed by the holder. */
struct ct_figures {
	__u64 attach_stall_ns;
	__u64 beats;			/* under VMM B */
	__u64 ns;
	__u64 irq_ns;			/* irqfd_in_gap: KVM_IRQFD to the interrupt */
	__u64 irqs;			/* ... the guest's count at the end */
};

/* ---- small helpers ---- */

static __u64 ct_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static void ct_sleep_ms(int ms)
{
	usleep(ms * 1000);
}

static int ct_first_diff(const void *a, const void *b, size_t size)
{
	const unsigned char *x = a, *y = b;
	size_t i;

	for (i = 0; i < size; i++)
		if (x[i] != y[i])
			return i;
	return -1;
}

/* ---- physical CPUs ---- */

static int ct_cpu_online(__u32 cpu)
{
	char path[64], c = 0;
	int fd;

	snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu%u/online", cpu);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	TEST_ASSERT(read(fd, &c, 1) == 1, "read %s", path);
	close(fd);
	return c == '1';
}

/* Parked: offline, and Linux cannot have it back while the caretaker owns it. */
static void ct_expect_cpu_parked(__u32 cpu)
{
	char path[64];
	ssize_t r;
	int fd;

	TEST_ASSERT(ct_cpu_online(cpu) == 0, "CPU %u is not offline", cpu);
	snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu%u/online", cpu);
	fd = open(path, O_WRONLY);
	TEST_ASSERT(fd >= 0, "open %s", path);
	r = write(fd, "1", 1);
	TEST_ASSERT(r == -1 && errno == EBUSY,
		    "onlining parked CPU %u: got %zd errno %d (%s), expected EBUSY",
		    cpu, r, errno, strerror(errno));
	close(fd);
}

/* Set a parameter of caretaker.ko. */
static void ct_param_set(const char *name, const char *val)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "/sys/module/caretaker/parameters/%s", name);
	fd = open(path, O_WRONLY);
	TEST_ASSERT(fd >= 0, "open %s: %s", path, strerror(errno));
	TEST_ASSERT(write(fd, val, strlen(val)) == (ssize_t)strlen(val), "write %s", path);
	close(fd);
}

/* Returns how long it took, in ms. */
static int ct_wait_cpu_online(__u32 cpu)
{
	__u64 start = ct_now_ns();
	int ms;

	for (ms = 0; ct_cpu_online(cpu) != 1; ms++) {
		TEST_ASSERT(ms < CT_WAIT_MS, "CPU %u still offline after %d ms",
			    cpu, CT_WAIT_MS);
		ct_sleep_ms(1);
	}
	return (ct_now_ns() - start) / 1000000;
}

/* ---- processes ---- */

static pid_t ct_fork(void)
{
	pid_t pid;

	/* Or buffered output is printed twice. */
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	TEST_ASSERT(pid >= 0, "fork");
	if (!pid)
		prctl(PR_SET_PDEATHSIG, SIGKILL);
	return pid;
}

static int ct_wait_child(pid_t pid, const char *who)
{
	int status, ms;
	pid_t r;

	for (ms = 0;; ms += 10) {
		r = waitpid(pid, &status, WNOHANG);
		TEST_ASSERT(r >= 0, "waitpid");
		if (r == pid)
			return status;
		if (ms >= ct_child_ms) {
			kill(pid, SIGKILL);
			TEST_FAIL("%s (pid %d) did not finish in %d ms", who, pid,
				  ct_child_ms);
		}
		ct_sleep_ms(10);
	}
}

static void ct_expect_child_passed(pid_t pid, const char *who)
{
	int status = ct_wait_child(pid, who);

	TEST_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == KSFT_PASS,
		    "%s failed (wait status %#x)", who, status);
}

/* ---- caretaker calls ---- */

static int ct_prepare(struct kvm_vm *vm, const __u32 *cpus, __u32 nr)
{
	struct kvm_caretaker_prepare p = {
		.nr_cpus = nr,
		.cpus = (__u64)(unsigned long)cpus,
	};

	return __vm_ioctl(vm, KVM_CARETAKER_PREPARE, &p);
}

static int ct_detach(int ct_fd)
{
	struct kvm_caretaker_op op = { };

	return ioctl(ct_fd, KVM_CARETAKER_DETACH, &op);
}

static int ct_attach(struct kvm_vm *vm, int ct_fd)
{
	struct kvm_caretaker_attach a = { .caretaker_fd = ct_fd };

	return __vm_ioctl(vm, KVM_CARETAKER_ATTACH, &a);
}

static int ct_attach_prepare(struct kvm_vm *vm, int ct_fd)
{
	struct kvm_caretaker_attach a = {
		.flags = KVM_CARETAKER_ATTACH_PREPARE,
		.caretaker_fd = ct_fd,
	};

	return __vm_ioctl(vm, KVM_CARETAKER_ATTACH, &a);
}

static struct kvm_caretaker_status ct_status(int ct_fd)
{
	struct kvm_caretaker_status st = { };

	TEST_ASSERT(!ioctl(ct_fd, KVM_CARETAKER_GET_STATUS, &st),
		    "GET_STATUS: %s", strerror(errno));
	return st;
}

static struct kvm_caretaker_vcpu_status ct_vcpu_status(int ct_fd, __u32 index)
{
	struct kvm_caretaker_vcpu_status vs = { .vcpu_index = index };

	TEST_ASSERT(!ioctl(ct_fd, KVM_CARETAKER_GET_VCPU_STATUS, &vs),
		    "GET_VCPU_STATUS(%u): %s", index, strerror(errno));
	TEST_ASSERT_EQ(vs.vcpu_index, index);
	return vs;
}

/* The vCPU waits on exit @code, at a RIP in the guest, and counted it. */
static void ct_expect_blocked_on(int ct_fd, __u64 code, __u32 kind)
{
	struct kvm_caretaker_vcpu_status vs = ct_vcpu_status(ct_fd, 0);

	TEST_ASSERT(vs.state == KVM_CARETAKER_VCPU_BLOCKED &&
		    vs.blocked_exit_code == code && vs.blocked_rip &&
		    vs.exits_by_kind[kind] - vs.handled_by_kind[kind] == 1 &&
		    vs.detached_ns >= vs.blocked_ns,
		    "GET_VCPU_STATUS: state %u exit %#llx rip %#llx kind %u count %llu (%llu handled), expected blocked on %#llx",
		    vs.state, (unsigned long long)vs.blocked_exit_code,
		    (unsigned long long)vs.blocked_rip, kind,
		    (unsigned long long)vs.exits_by_kind[kind],
		    (unsigned long long)vs.handled_by_kind[kind], (unsigned long long)code);
}

static struct kvm_caretaker_status ct_expect_status(int ct_fd, __u32 state,
						    __u32 nr_vcpus)
{
	struct kvm_caretaker_status st = ct_status(ct_fd);
	struct kvm_caretaker_vcpu_status vs = { 0 };

	if (st.state == KVM_CARETAKER_STATE_BLOCKED && state != st.state)
		ioctl(ct_fd, KVM_CARETAKER_GET_VCPU_STATUS, &vs);
	TEST_ASSERT(st.state == state && st.nr_vcpus == nr_vcpus,
		    "GET_STATUS: state %u with %u vCPUs, expected %u with %u (vCPU0 waits on exit %#llx at RIP %#llx)",
		    st.state, st.nr_vcpus, state, nr_vcpus,
		    (unsigned long long)vs.blocked_exit_code, (unsigned long long)vs.blocked_rip);
	return st;
}

/* ---- running a vCPU in a thread, with a bounded way out ---- */

struct ct_runner {
	struct kvm_vcpu *vcpu;
	pthread_t thread;
	int ret;		/* of KVM_RUN */
	int err;
	__u32 exit_reason;
	bool done;
	bool active;
	/*
	 * Adoption from the vCPU threads (ct_adopter_attach_ready()): each
	 * enters KVM_RUN once with immediate_exit, then waits for @go; the
	 * leader sleeps until @attach_at_ns (CLOCK_MONOTONIC, 0: at once),
	 * ATTACHes @attach_fd into @attach_vm and goes straight into
	 * KVM_RUN; the others wait for its @attached (1: adopted, -1: not).
	 */
	struct kvm_vm *attach_vm;
	int attach_fd;
	__u64 attach_at_ns;
	struct ct_runner *leader;
	int *go;
	bool followers;		/* the leader: other vCPUs wait for it */
	int attached;
	int attach_err;
	bool warm;		/* entered KVM_RUN once */
	__u64 attach_tsc, attach_end_tsc;	/* around the ATTACH ioctl */
};

/* SIGUSR1 only interrupts KVM_RUN. */
static void ct_kick_handler(int sig)
{
}

static int ct_attach(struct kvm_vm *vm, int ct_fd);

/*
 * Before KVM_RUN: ATTACH, or wait for the leader's.  False: no KVM_RUN.
 * Only this thread reads its adoption fields, and it clears them: a
 * later ct_runner_start() of the same runner just runs.
 */
static bool ct_runner_adopt(struct ct_runner *r)
{
	struct ct_runner *leader = r->leader;
	struct kvm_vm *vm = r->attach_vm;
	int attached, ret;

	r->leader = NULL;
	r->attach_vm = NULL;

	if (vm || leader) {
		/*
		 * KVM's first KVM_RUN of a VM and of a vCPU thread does
		 * one-time work (kvm_mmu_post_init_vm() starts a kthread):
		 * do it now, without entering the guest, not after ATTACH.
		 */
		WRITE_ONCE(r->vcpu->run->immediate_exit, 1);
		ret = __vcpu_run(r->vcpu);
		TEST_ASSERT(ret == -1 && errno == EINTR,
			    "vCPU%u: KVM_RUN with immediate_exit: %d errno %d",
			    r->vcpu->id, ret, errno);
		WRITE_ONCE(r->vcpu->run->immediate_exit, 0);
		__atomic_store_n(&r->warm, true, __ATOMIC_RELEASE);
		while (!__atomic_load_n(r->go, __ATOMIC_ACQUIRE))
			syscall(SYS_futex, r->go, FUTEX_WAIT, 0, NULL, NULL, 0);
	}
	if (vm) {
		if (r->attach_at_ns) {
			/*
			 * Asleep until its time, as a VMM waiting for its
			 * moment: a spinning thread would keep a host CPU
			 * from the guest's for the whole window.
			 */
			struct timespec ts = {
				.tv_sec = r->attach_at_ns / 1000000000ULL,
				.tv_nsec = r->attach_at_ns % 1000000000ULL,
			};

			while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
				;
			r->attach_at_ns = 0;
		}
		r->attach_tsc = rdtsc();
		attached = ct_attach(vm, r->attach_fd) ? -1 : 1;
		r->attach_end_tsc = rdtsc();
		r->attach_err = attached < 0 ? errno : 0;
		__atomic_store_n(&r->attached, attached, __ATOMIC_RELEASE);
		/* A syscall less in the stall where nobody waits. */
		if (r->followers)
			syscall(SYS_futex, &r->attached, FUTEX_WAKE, INT32_MAX, NULL, NULL, 0);
	} else if (leader) {
		while (!(attached = __atomic_load_n(&leader->attached, __ATOMIC_ACQUIRE)))
			syscall(SYS_futex, &leader->attached, FUTEX_WAIT, 0, NULL, NULL, 0);
	} else {
		return true;
	}
	if (attached > 0)
		return true;
	r->ret = -1;
	r->err = vm ? r->attach_err : EPERM;
	return false;
}

static void *ct_runner_main(void *arg)
{
	struct ct_runner *r = arg;

	if (!ct_runner_adopt(r)) {
		__atomic_store_n(&r->done, true, __ATOMIC_RELEASE);
		return NULL;
	}
	r->ret = __vcpu_run(r->vcpu);
	r->err = errno;
	r->exit_reason = r->vcpu->run->exit_reason;
	/* A triple fault: what the vCPU held, for whoever reads the failure. */
	if (r->ret == 0 && r->exit_reason == KVM_EXIT_SHUTDOWN) {
		struct kvm_sregs sregs;
		struct kvm_regs regs;

		vcpu_regs_get(r->vcpu, &regs);
		vcpu_sregs_get(r->vcpu, &sregs);
		fprintf(stderr,
			"vCPU%u: shutdown on host CPU %d: RIP %#llx RSP %#llx CR0 %#llx CR3 %#llx CR4 %#llx EFER %#llx IDT %#llx/%#x\n",
			r->vcpu->id, sched_getcpu(), regs.rip, regs.rsp, sregs.cr0, sregs.cr3,
			sregs.cr4, sregs.efer, sregs.idt.base, sregs.idt.limit);
	}
	__atomic_store_n(&r->done, true, __ATOMIC_RELEASE);
	return NULL;
}

/* One KVM_RUN, in a thread of its own. */
static void ct_runner_start(struct ct_runner *r, struct kvm_vcpu *vcpu)
{
	TEST_ASSERT(!r->active, "vCPU%u is already running", vcpu->id);
	r->vcpu = vcpu;
	r->done = false;
	r->active = true;
	TEST_ASSERT(!pthread_create(&r->thread, NULL, ct_runner_main, r),
		    "pthread_create");
}

/* Did KVM_RUN return within @ms?  If so, the thread is joined. */
static bool ct_runner_wait(struct ct_runner *r, int ms)
{
	__u64 end = ct_now_ns() + ms * 1000000ULL;

	while (!__atomic_load_n(&r->done, __ATOMIC_ACQUIRE)) {
		if (ct_now_ns() > end)
			return false;
		ct_sleep_ms(1);
	}
	pthread_join(r->thread, NULL);
	r->active = false;
	return true;
}

/*
 * Get the vCPU out of KVM_RUN as a VMM pauses it: immediate_exit covers
 * a thread that has not entered KVM_RUN yet, the signal one inside it.
 */
static void ct_runner_stop(struct ct_runner *r)
{
	int i;

	if (!r->active)
		return;
	WRITE_ONCE(r->vcpu->run->immediate_exit, 1);
	for (i = 0; !ct_runner_wait(r, 10); i++) {
		TEST_ASSERT(i < CT_WAIT_MS / 10, "vCPU%u does not leave KVM_RUN",
			    r->vcpu->id);
		pthread_kill(r->thread, SIGUSR1);
	}
	WRITE_ONCE(r->vcpu->run->immediate_exit, 0);
}

/* Stop it, and nothing but the stop may have ended that KVM_RUN. */
static void ct_runner_pause(struct ct_runner *r)
{
	ct_runner_stop(r);
	TEST_ASSERT(r->ret == -1 && r->err == EINTR,
		    "vCPU%u: KVM_RUN ended with %d errno %d exit %u (%s), not by the pause",
		    r->vcpu->id, r->ret, r->err, r->exit_reason,
		    exit_reason_str(r->exit_reason));
}

/* One KVM_RUN that must return promptly by itself. */
static void ct_run_once(struct ct_runner *r, struct kvm_vcpu *vcpu, const char *what)
{
	ct_runner_start(r, vcpu);
	if (!ct_runner_wait(r, CT_WAIT_MS)) {
		ct_runner_stop(r);
		TEST_FAIL("vCPU%u: %s: KVM_RUN did not return in %d ms",
			  vcpu->id, what, CT_WAIT_MS);
	}
}

/*
 * A vCPU the caretaker holds (@when: "after DETACH", ...) refuses KVM_RUN,
 * in @r's thread so that a KVM_RUN that is let through cannot hang the
 * test, and KVM_SET_REGS of @regs, with EBUSY.
 */
static void ct_expect_vcpu_held(struct ct_runner *r, struct kvm_vcpu *vcpu,
				const struct kvm_regs *regs, const char *when)
{
	int ret;

	ct_run_once(r, vcpu, when);
	TEST_ASSERT(r->ret == -1 && r->err == EBUSY,
		    "vCPU%u: KVM_RUN %s: %d errno %d, expected EBUSY",
		    vcpu->id, when, r->ret, r->err);
	ret = __vcpu_ioctl(vcpu, KVM_SET_REGS, regs);
	TEST_ASSERT(ret == -1 && errno == EBUSY,
		    "vCPU%u: KVM_SET_REGS %s: %d errno %d, expected EBUSY",
		    vcpu->id, when, ret, errno);
}

/*
 * A VM whose vCPUs the caretaker holds (@when: "after DETACH", ...) takes
 * no interrupt: KVM_IRQ_LINE, KVM_SIGNAL_MSI and a new irqfd fail with
 * EBUSY, where they would have landed in state the guest no longer has.
 */
static void ct_expect_vm_held(struct kvm_vm *vm, const char *when)
{
	struct kvm_irq_level line = { .irq = CT_IRQ_GSI, .level = 1 };
	struct kvm_msi msi = {
		.address_lo = APIC_DEFAULT_GPA,
		.data = CT_IRQ_VECTOR,
	};
	struct kvm_irqfd irqfd = { .gsi = CT_IRQ_GSI };
	int ret, efd;

	ret = __vm_ioctl(vm, KVM_IRQ_LINE, &line);
	TEST_ASSERT(ret == -1 && errno == EBUSY,
		    "KVM_IRQ_LINE %s: %d errno %d, expected EBUSY", when, ret, errno);
	ret = __vm_ioctl(vm, KVM_SIGNAL_MSI, &msi);
	TEST_ASSERT(ret == -1 && errno == EBUSY,
		    "KVM_SIGNAL_MSI %s: %d errno %d, expected EBUSY", when, ret, errno);
	efd = eventfd(0, 0);
	TEST_ASSERT(efd >= 0, "eventfd: %s", strerror(errno));
	irqfd.fd = efd;
	ret = __vm_ioctl(vm, KVM_IRQFD, &irqfd);
	TEST_ASSERT(ret == -1 && errno == EBUSY,
		    "KVM_IRQFD %s: %d errno %d, expected EBUSY", when, ret, errno);
	close(efd);
}

static void ct_expect_marker(struct ct_runner *r)
{
	struct kvm_run *run = r->vcpu->run;

	TEST_ASSERT(r->ret == 0 && r->exit_reason == KVM_EXIT_IO,
		    "vCPU%u: expected KVM_EXIT_IO, got %d errno %d exit %u (%s)",
		    r->vcpu->id, r->ret, r->err, r->exit_reason,
		    exit_reason_str(r->exit_reason));
	TEST_ASSERT(run->io.direction == KVM_EXIT_IO_OUT && run->io.port == CT_PORT &&
		    run->io.size == 1 && run->io.count == 1 &&
		    *((__u8 *)run + run->io.data_offset) == CT_MARKER,
		    "vCPU%u: not the guest's marker: dir %u port %#x size %u count %u data %#x",
		    r->vcpu->id, run->io.direction, run->io.port, run->io.size,
		    run->io.count, *((__u8 *)run + run->io.data_offset));
}

/* ---- heartbeats ---- */

/* Every vCPU's counter must go up by @n within CT_WAIT_MS. */
static void ct_expect_beats(struct ct_beat *beats, __u32 nr, __u64 n, const char *when)
{
	__u64 start[CT_MAX_VCPUS], end = ct_now_ns() + CT_WAIT_MS * 1000000ULL;
	__u32 i;

	for (i = 0; i < nr; i++)
		start[i] = READ_ONCE(beats[i].counter);
	for (i = 0; i < nr; i++) {
		while (READ_ONCE(beats[i].counter) - start[i] < n) {
			TEST_ASSERT(ct_now_ns() < end,
				    "vCPU%u: heartbeat stuck %s: +%llu in %d ms",
				    i, when,
				    (unsigned long long)(READ_ONCE(beats[i].counter) - start[i]),
				    CT_WAIT_MS);
			ct_sleep_ms(1);
		}
	}
}

/* A stopped vCPU stays stopped. */
static void ct_expect_still(struct ct_beat *beat, const char *why)
{
	__u64 c = READ_ONCE(beat->counter);

	ct_sleep_ms(CT_STILL_MS);
	TEST_ASSERT(READ_ONCE(beat->counter) == c,
		    "the heartbeat went on (+%llu in %d ms) %s",
		    (unsigned long long)(READ_ONCE(beat->counter) - c), CT_STILL_MS, why);
}

/* Poll until the command is carried out. */
static void ct_expect_done(struct ct_beat *beat, __u64 done, const char *what)
{
	int ms;

	for (ms = 0; READ_ONCE(beat->done) < done; ms++) {
		TEST_ASSERT(ms < CT_WAIT_MS, "the guest did not carry out %s", what);
		ct_sleep_ms(1);
	}
}

/* Poll until the guest has taken @n interrupts; returns how long it took, in ns. */
static __u64 ct_wait_irqs(struct ct_beat *beat, __u64 n, const char *when)
{
	__u64 start = ct_now_ns();

	while (READ_ONCE(beat->irqs) < n) {
		TEST_ASSERT(ct_now_ns() - start < CT_WAIT_MS * 1000000ULL,
			    "%llu interrupts %s after %d ms, expected %llu",
			    (unsigned long long)READ_ONCE(beat->irqs), when, CT_WAIT_MS,
			    (unsigned long long)n);
		ct_sleep_ms(1);
	}
	return ct_now_ns() - start;
}

struct ct_gap {
	__u64 ns;
	__u64 beats[CT_MAX_VCPUS];
	__u64 tsc[CT_MAX_VCPUS];	/* guest TSC ticks over the gap */
	__u64 max_stall_ns;
};

/*
 * Watch the orphan for @ms through the holder's own mapping of the memfd:
 * every vCPU must keep counting, without long pauses, and its TSC must
 * run with the wall clock (loosely: this is to catch a clock that stops
 * or jumps while detached, not to measure TCG).
 */
static void ct_watch(struct ct_orphan *o, int ms, struct ct_gap *g)
{
	__u64 c0[CT_MAX_VCPUS], t0[CT_MAX_VCPUS], last[CT_MAX_VCPUS];
	__u64 seen[CT_MAX_VCPUS], start, now, c;
	__u32 n = o->h.nr_vcpus, i;
	double ticks, ratio;

	memset(g, 0, sizeof(*g));
	start = ct_now_ns();
	for (i = 0; i < n; i++) {
		c0[i] = READ_ONCE(o->beats[i].counter);
		last[i] = c0[i];
		t0[i] = READ_ONCE(o->beats[i].tsc);
		seen[i] = start;
	}
	do {
		ct_sleep_ms(CT_SAMPLE_MS);
		now = ct_now_ns();
		for (i = 0; i < n; i++) {
			c = READ_ONCE(o->beats[i].counter);
			if (c != last[i]) {
				last[i] = c;
				seen[i] = now;
			} else if (now - seen[i] > g->max_stall_ns) {
				g->max_stall_ns = now - seen[i];
			}
		}
	} while (now - start < ms * 1000000ULL);
	g->ns = now - start;

	for (i = 0; i < n; i++) {
		o->last_tsc[i] = READ_ONCE(o->beats[i].tsc);
		g->beats[i] = last[i] - c0[i];
		g->tsc[i] = o->last_tsc[i] - t0[i];

		TEST_ASSERT(g->beats[i] >= CT_MIN_BEATS_PER_S * g->ns / 1000000000ULL,
			    "vCPU%u: only +%llu heartbeats in %llu ms detached", i,
			    (unsigned long long)g->beats[i],
			    (unsigned long long)g->ns / 1000000);
		/*
		 * Against the time the monitor last saw this vCPU's counter
		 * move: under single-threaded TCG a vCPU can go unscheduled
		 * for a while, and its last TSC is as old as its last beat.
		 * With two vCPUs detached, TCG's per-vCPU TSC was seen to
		 * advance 0.20 to 1.55 times the holder's clock while the
		 * counters moved throughout: only "it advanced, and not
		 * absurdly far" is checked here; that guest TSC minus host
		 * TSC is unchanged is checked exactly, by the TSC offsets.
		 */
		ticks = (double)(seen[i] - start) / 1e6 * o->h.state[i].tsc_khz;
		ratio = g->tsc[i] / ticks;
		TEST_ASSERT(g->tsc[i] > 0 && ratio < 4,
			    "vCPU%u: guest TSC advanced %llu in %llu ms at %u kHz (ratio %.2f)",
			    i, (unsigned long long)g->tsc[i],
			    (unsigned long long)(seen[i] - start) / 1000000,
			    o->h.state[i].tsc_khz, ratio);
	}
	TEST_ASSERT(g->max_stall_ns <= CT_MAX_STALL_MS * 1000000ULL,
		    "a heartbeat stood still for %llu ms while detached",
		    (unsigned long long)g->max_stall_ns / 1000000);
}

static void ct_print_gap(const char *name, const struct ct_orphan *o,
			 const struct ct_gap *g, const char *tail)
{
	double s = g->ns / 1e9;
	__u32 i;

	printf("# %s: detached %.3f s, no VMM:", name, s);
	for (i = 0; i < o->h.nr_vcpus; i++)
		printf(" vCPU%u +%llu beats (%.2f M/s, TSC/wall %.2f)", i,
		       (unsigned long long)g->beats[i], g->beats[i] / s / 1e6,
		       g->tsc[i] / (g->ns / 1e6 * o->h.state[i].tsc_khz));
	printf(", longest pause %llu ms%s\n",
	       (unsigned long long)g->max_stall_ns / 1000000, tail);
}

/* ---- VMM A's VM ---- */

struct ct_guest {
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpus[CT_MAX_VCPUS];
	struct ct_runner runners[CT_MAX_VCPUS];
	__u32 nr_vcpus;
	struct ct_beat *beats;		/* through the memfd mapping */
	gpa_t beat_gpa;
	__u32 nr_slots;
	struct ct_slot slots[CT_MAX_SLOTS];
	int memfds[CT_MAX_SLOTS];
	int eventfd;			/* an irqfd's, or -1 */
};

/*
 * Move every memslot onto a shared memfd mapping at the same address (as
 * caretaker_uapi_test does, with ct_region_to_memfd()), keeping the memfds:
 * they are what VMM A hands over.
 */
static void ct_guest_back_with_memfds(struct ct_guest *g)
{
	struct userspace_mem_region *region;
	int bkt, fd;

	hash_for_each(g->vm->regions.slot_hash, bkt, region, slot_node) {
		TEST_ASSERT(region->backing_src_type == VM_MEM_SRC_ANONYMOUS ||
			    region->backing_src_type == VM_MEM_SRC_ANONYMOUS_THP,
			    "memslot %u: unexpected backing %d", region->region.slot,
			    region->backing_src_type);
		TEST_ASSERT(g->nr_slots < CT_MAX_SLOTS, "too many memslots");
		fd = ct_region_to_memfd(region);

		g->memfds[g->nr_slots] = fd;
		g->slots[g->nr_slots++] = (struct ct_slot) {
			.slot = region->region.slot,
			.flags = region->region.flags,
			.gpa = region->region.guest_phys_addr,
			.size = region->region.memory_size,
			.offset = (char *)region->host_mem - (char *)region->mmap_start,
		};
	}
}

/*
 * A VM that qualifies for PREPARE, its vCPUs running @guest_code on
 * @pages of their own, which start with a struct ct_beat per vCPU.
 */
/* A VM that does not opt in to the caretaker (for runs without caretaker.ko). */
static bool ct_no_opt_in;
/* VMM B's vCPUs run on the host's TSC as it is (ct_adopter_create()). */
static bool ct_tsc_unscaled;
/*
 * The trail's pages in a memslot of their own (CT_TRAIL_SLOT), apart from
 * the guest's code, stack and page tables: a holder that retrieves only
 * that memfd still sees the guest's progress.
 */
static bool ct_trail_own_slot;
#define CT_TRAIL_SLOT		10
#define CT_TRAIL_SLOT_GPA	0x40000000ULL

static void __ct_guest_create(struct ct_guest *g, __u32 nr_vcpus, void *guest_code,
			      int pages)
{
	gva_t beat_gva;
	__u32 i;

	memset(g, 0, sizeof(*g));
	g->eventfd = -1;
	g->nr_vcpus = nr_vcpus;
	g->vm = __vm_create(VM_SHAPE_DEFAULT, nr_vcpus, 0);
	if (!ct_no_opt_in)
		vm_enable_cap(g->vm, KVM_CAP_CARETAKER, 0);
	if (ct_trail_own_slot) {
		vm_userspace_mem_region_add(g->vm, VM_MEM_SRC_ANONYMOUS, CT_TRAIL_SLOT_GPA,
					    CT_TRAIL_SLOT, pages, 0);
		beat_gva = CT_TRAIL_SLOT_GPA;
		virt_map(g->vm, beat_gva, CT_TRAIL_SLOT_GPA, pages);
	} else {
		beat_gva = vm_alloc_pages(g->vm, pages);
	}
	for (i = 0; i < nr_vcpus; i++) {
		g->vcpus[i] = vm_vcpu_add(g->vm, i, guest_code);
		vcpu_args_set(g->vcpus[i], 1, beat_gva + i * sizeof(struct ct_beat));
	}
	g->beat_gpa = addr_gva2gpa(g->vm, beat_gva);
	ct_guest_back_with_memfds(g);
	g->beats = addr_gva2hva(g->vm, beat_gva);
}

/* ... running guest_heartbeat(). */
static void ct_guest_create(struct ct_guest *g, __u32 nr_vcpus)
{
	__ct_guest_create(g, nr_vcpus, guest_heartbeat, 1);
}

/*
 * Route CT_IRQ_GSI to the local APIC of @apic_id as an MSI of
 * CT_IRQ_VECTOR (physical destination, fixed, edge), the only route of
 * @vm, and make @eventfd its irqfd.
 */
static void ct_route_irqfd(struct kvm_vm *vm, __u32 apic_id, int eventfd)
{
	struct kvm_irq_routing *routing = kvm_gsi_routing_create();

	routing->nr = 1;
	routing->entries[0].gsi = CT_IRQ_GSI;
	routing->entries[0].type = KVM_IRQ_ROUTING_MSI;
	routing->entries[0].u.msi.address_lo = APIC_DEFAULT_GPA | (apic_id << 12);
	routing->entries[0].u.msi.data = CT_IRQ_VECTOR;
	kvm_gsi_routing_write(vm, routing);
	kvm_assign_irqfd(vm, CT_IRQ_GSI, eventfd);
}

/*
 * ... running guest_heartbeat_irq() on one vCPU, the handler installed
 * (the IDT is the library's, in guest memory: VMM B finds it there), with
 * an irqfd routed to it.
 */
static void ct_guest_create_irq(struct ct_guest *g)
{
	__ct_guest_create(g, 1, guest_heartbeat_irq, 1);
	vm_install_exception_handler(g->vm, CT_IRQ_VECTOR, guest_irq_handler);
	g->eventfd = eventfd(0, EFD_CLOEXEC);
	TEST_ASSERT(g->eventfd >= 0, "eventfd: %s", strerror(errno));
	ct_route_irqfd(g->vm, g->vcpus[0]->id, g->eventfd);
}

static struct ct_timer_log *ct_timer_log(struct ct_beat *beats)
{
	return (void *)((char *)beats + CT_TIMER_LOG_OFF);
}

/* ... running guest_timer() on one vCPU, in timer mode @mode. */
static void ct_guest_create_timer(struct ct_guest *g, unsigned int mode)
{
	struct ct_timer_log *tl;
	__u64 khz;

	__ct_guest_create(g, 1, guest_timer, 1);
	vm_install_exception_handler(g->vm, CT_TIMER_VECTOR, guest_timer_handler);
	khz = __vcpu_ioctl(g->vcpus[0], KVM_GET_TSC_KHZ, NULL);
	TEST_ASSERT(khz > 0, "KVM_GET_TSC_KHZ");
	tl = ct_timer_log(g->beats);
	tl->mode = mode;
	tl->tsc_per_us = khz / 1000 ?: 1;
	tl->period_tsc = CT_TIMER_PERIOD_US * tl->tsc_per_us;
	/* The VM's APIC bus runs at 1 GHz (KVM's default), divide by 1. */
	tl->period_count = CT_TIMER_PERIOD_US * 1000ULL;
}

/* ... running guest_apic_cmds() on one vCPU. */
static void ct_guest_create_apic(struct ct_guest *g)
{
	__u64 khz;

	__ct_guest_create(g, 1, guest_apic_cmds, 1);
	vm_install_exception_handler(g->vm, CT_IRQ_VECTOR, guest_irq_handler);
	khz = __vcpu_ioctl(g->vcpus[0], KVM_GET_TSC_KHZ, NULL);
	TEST_ASSERT(khz > 0, "KVM_GET_TSC_KHZ");
	ct_timer_log(g->beats)->tsc_per_us = khz / 1000 ?: 1;
}

/*
 * A consistent copy of the guest's timer log, taken while the guest
 * ticks: its handler makes seq odd while it updates the log (x86 keeps
 * the guest's stores in order, and this thread's loads).
 */
static void ct_timer_snap(const struct ct_timer_log *tl, struct ct_timer_log *out)
{
	__u64 seq;
	int ms = 0;

	for (;;) {
		seq = READ_ONCE(tl->seq);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		memcpy(out, (const void *)tl, sizeof(*out));
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
		if (!(seq & 1) && READ_ONCE(tl->seq) == seq)
			return;
		TEST_ASSERT(ms < CT_WAIT_MS, "the guest's timer handler ran for %d ms", ms);
		ct_sleep_ms(1);
		ms++;
	}
}

/* The guest's tick count must go up by @n within CT_WAIT_MS. */
static void ct_wait_ticks(struct ct_beat *beats, __u64 n, const char *when)
{
	struct ct_timer_log *tl = ct_timer_log(beats);
	__u64 t0 = READ_ONCE(tl->ticks);
	int ms;

	for (ms = 0; READ_ONCE(tl->ticks) < t0 + n; ms++) {
		TEST_ASSERT(ms < CT_WAIT_MS, "%llu timer ticks %s in %d ms, expected %llu",
			    (unsigned long long)(READ_ONCE(tl->ticks) - t0), when, CT_WAIT_MS,
			    (unsigned long long)n);
		ct_sleep_ms(1);
	}
}

/* Start, or pause, one runner per vCPU (a VMM's vCPU threads). */
static void ct_runners_start(struct ct_runner *r, struct kvm_vcpu **vcpus, __u32 n)
{
	__u32 i;

	for (i = 0; i < n; i++)
		ct_runner_start(&r[i], vcpus[i]);
}

static void ct_runners_pause(struct ct_runner *r, __u32 n)
{
	__u32 i;

	for (i = 0; i < n; i++)
		ct_runner_pause(&r[i]);
}

static void ct_guest_run(struct ct_guest *g)
{
	ct_runners_start(g->runners, g->vcpus, g->nr_vcpus);
}

static void ct_guest_pause(struct ct_guest *g)
{
	ct_runners_pause(g->runners, g->nr_vcpus);
}

/* Add CT_SCRATCH_SLOT; returns the ioctl's result, errno preserved. */
static int ct_add_scratch_slot(struct kvm_vm *vm)
{
	size_t size = 16 * getpagesize();
	int fd, r, err;
	void *hva;

	fd = memfd_create("caretaker-scratch", 0);
	TEST_ASSERT(fd >= 0 && !ftruncate(fd, size), "scratch memfd");
	hva = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	TEST_ASSERT(hva != MAP_FAILED, "mmap scratch memfd");
	close(fd);
	r = __vm_set_user_memory_region(vm, CT_SCRATCH_SLOT, 0, CT_SCRATCH_GPA,
					size, hva);
	err = errno;
	if (r)
		munmap(hva, size);
	errno = err;
	return r;
}

static __u32 ct_tsc_khz(struct kvm_vcpu *vcpu)
{
	int khz = __vcpu_ioctl(vcpu, KVM_GET_TSC_KHZ, NULL);

	TEST_ASSERT(khz > 0, "KVM_GET_TSC_KHZ: %d", khz);
	return khz;
}

/* What VMM B must find after ATTACH; saved while the vCPU is paused. */
static void ct_save_vcpu(struct kvm_vcpu *vcpu, struct ct_vcpu_state *s)
{
	struct kvm_x86_state *x = vcpu_save_state(vcpu);
	int size = vm_check_cap(vcpu->vm, KVM_CAP_XSAVE2);

	/* Nothing here runs a nested guest; a classic restore leaves it out. */
	TEST_ASSERT(!kvm_x86_state_is_guest_mode(x), "vCPU%u is in guest mode", vcpu->id);
	size = size ?: sizeof(struct kvm_xsave);
	TEST_ASSERT(size <= CT_MAX_XSAVE, "XSAVE state of %d bytes", size);
	s->xsave_size = size;
	memcpy(s->xsave, x->xsave, size);
	s->regs = x->regs;
	s->sregs = x->sregs;
	s->debugregs = x->debugregs;
	s->xcrs = x->xcrs;
	s->events = x->events;
	s->mp_state = x->mp_state;
	TEST_ASSERT(x->msrs.nmsrs <= CT_MAX_MSRS, "%u MSRs", x->msrs.nmsrs);
	s->nr_msrs = x->msrs.nmsrs;
	memcpy(s->msrs, x->msrs.entries, s->nr_msrs * sizeof(s->msrs[0]));
	kvm_x86_state_cleanup(x);

	vcpu_ioctl(vcpu, KVM_GET_LAPIC, &s->lapic);
	TEST_ASSERT(!__vcpu_has_device_attr(vcpu, KVM_VCPU_TSC_CTRL, KVM_VCPU_TSC_OFFSET),
		    "no KVM_VCPU_TSC_OFFSET attribute");
	vcpu_device_attr_get(vcpu, KVM_VCPU_TSC_CTRL, KVM_VCPU_TSC_OFFSET,
			     &s->tsc_offset);
	s->tsc_khz = ct_tsc_khz(vcpu);

	/* As KVM has it now, with its runtime updates (OSXSAVE, XSAVE sizes). */
	vcpu_get_cpuid(vcpu);
	TEST_ASSERT(vcpu->cpuid->nent <= CT_MAX_CPUID, "%u CPUID entries",
		    vcpu->cpuid->nent);
	s->nr_cpuid = vcpu->cpuid->nent;
	memcpy(s->cpuid, vcpu->cpuid->entries, s->nr_cpuid * sizeof(s->cpuid[0]));
}

/*
 * A classic restart: load what ct_save_vcpu() took into a new vCPU (whose
 * CPUID is already set), in vcpu_load_state()'s order, then the local
 * APIC and, last, the TSC offset, so that guest TSC minus host TSC is
 * what it was and the time the guest did not run shows as a gap.
 */
static void ct_restore_vcpu(struct kvm_vcpu *vcpu, struct ct_vcpu_state *s)
{
	struct kvm_msrs *msrs;
	struct kvm_xsave *xsave;

	msrs = calloc(1, sizeof(*msrs) + s->nr_msrs * sizeof(msrs->entries[0]));
	xsave = calloc(1, s->xsave_size);
	TEST_ASSERT(msrs && xsave, "calloc");
	msrs->nmsrs = s->nr_msrs;
	memcpy(msrs->entries, s->msrs, s->nr_msrs * sizeof(msrs->entries[0]));
	memcpy(xsave, s->xsave, s->xsave_size);

	vcpu_sregs_set(vcpu, &s->sregs);
	vcpu_msrs_set(vcpu, msrs);
	if (kvm_has_cap(KVM_CAP_XCRS))
		vcpu_xcrs_set(vcpu, &s->xcrs);
	vcpu_xsave_set(vcpu, xsave);
	vcpu_events_set(vcpu, &s->events);
	vcpu_mp_state_set(vcpu, &s->mp_state);
	vcpu_debugregs_set(vcpu, &s->debugregs);
	vcpu_regs_set(vcpu, &s->regs);
	vcpu_ioctl(vcpu, KVM_SET_LAPIC, &s->lapic);
	vcpu_device_attr_set(vcpu, KVM_VCPU_TSC_CTRL, KVM_VCPU_TSC_OFFSET, &s->tsc_offset);
	free(xsave);
	free(msrs);
}

/* ---- handing over: SCM_RIGHTS on a SOCK_SEQPACKET socketpair ---- */

/* The caretaker fd, the memfds, an irqfd's eventfd. */
#define CT_MAX_FDS	(2 + CT_MAX_SLOTS)

static void ct_send_handover(int sock, const struct ct_handover *h, const int *fds,
			     int nr_fds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * CT_MAX_FDS)];
		struct cmsghdr align;
	} u = { };
	struct iovec iov = { .iov_base = (void *)h, .iov_len = sizeof(*h) };
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = u.buf,
		.msg_controllen = CMSG_SPACE(sizeof(int) * nr_fds),
	};
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int) * nr_fds);
	memcpy(CMSG_DATA(c), fds, sizeof(int) * nr_fds);
	TEST_ASSERT(sendmsg(sock, &msg, 0) == sizeof(*h), "sendmsg: %s",
		    strerror(errno));
}

/*
 * False if VMM A went away without handing over.  @with_ct_fd: the
 * caretaker fd comes first, else (a classic restart, or the memory only)
 * just the memfds, and o->ct_fd is -1.  An irqfd's eventfd, if any, comes
 * last.
 */
static bool ct_recv_handover(int sock, struct ct_orphan *o, bool with_ct_fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * CT_MAX_FDS)];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = &o->h, .iov_len = sizeof(o->h) };
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = u.buf,
		.msg_controllen = sizeof(u.buf),
	};
	struct pollfd p = { .fd = sock, .events = POLLIN };
	struct cmsghdr *c;
	int fds[CT_MAX_FDS], nr_fds;
	ssize_t n;
	__u32 i;

	TEST_ASSERT(poll(&p, 1, ct_child_ms) == 1, "no handover from VMM A in %d ms",
		    ct_child_ms);
	n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	if (n == 0)
		return false;
	TEST_ASSERT(n == sizeof(o->h) && !(msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)),
		    "recvmsg: %zd bytes, flags %#x, errno %d", n, msg.msg_flags, errno);
	c = CMSG_FIRSTHDR(&msg);
	TEST_ASSERT(c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS,
		    "no SCM_RIGHTS in the handover");
	nr_fds = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
	TEST_ASSERT(nr_fds == with_ct_fd + (int)(o->h.nr_slots + o->h.nr_eventfds) &&
		    o->h.nr_slots <= CT_MAX_SLOTS && o->h.nr_eventfds <= 1,
		    "%d fds for %u memslots and %u eventfds", nr_fds, o->h.nr_slots,
		    o->h.nr_eventfds);
	memcpy(fds, CMSG_DATA(c), sizeof(int) * nr_fds);
	o->ct_fd = with_ct_fd ? fds[0] : -1;
	for (i = 0; i < o->h.nr_slots; i++)
		o->memfds[i] = fds[with_ct_fd + i];
	o->eventfd = o->h.nr_eventfds ? fds[nr_fds - 1] : -1;
	return true;
}

/* Which memslot holds the page at @gpa. */
static __u32 ct_gpa_slot(const struct ct_handover *h, __u64 gpa)
{
	__u32 i;

	for (i = 0; i < h->nr_slots; i++)
		if (gpa >= h->slots[i].gpa && gpa < h->slots[i].gpa + h->slots[i].size)
			return i;
	TEST_FAIL("guest page %#llx is in no memslot", (unsigned long long)gpa);
	return 0;
}

/* The holder's own mapping of @size bytes of guest memory at @gpa (a page). */
static void *ct_map_guest(const struct ct_orphan *o, __u64 gpa, size_t size)
{
	__u32 k = ct_gpa_slot(&o->h, gpa);
	const struct ct_slot *sl = &o->h.slots[k];
	void *p;

	TEST_ASSERT(gpa + size <= sl->gpa + sl->size, "guest memory across memslots");
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, o->memfds[k],
		 sl->offset + gpa - sl->gpa);
	TEST_ASSERT(p != MAP_FAILED, "mmap guest memory at %#llx", (unsigned long long)gpa);
	return p;
}

/* The holder's own mapping of the heartbeat page. */
static struct ct_beat *ct_map_beats(const struct ct_orphan *o)
{
	return ct_map_guest(o, o->h.beat_gpa, getpagesize());
}

/* ---- VMM A ---- */

#define CT_A_DETACH_TWICE	BIT(0)
#define CT_A_LINGER		BIT(1)	/* wait to be SIGKILLed */
#define CT_A_IRQFD		BIT(2)	/* guest_heartbeat_irq(), one vCPU, an irqfd */
#define CT_A_TIMER		BIT(3)	/* guest_timer(), one vCPU; mode in bits 8+ */
#define CT_A_APIC		BIT(4)	/* guest_apic_cmds(), one vCPU */
#define CT_A_TRAIL		BIT(5)	/* guest_trail(), one vCPU */
#define CT_A_LAST_IDLE		BIT(6)	/* the last vCPU not in KVM_RUN at DETACH */
#define CT_A_TIMER_MODE(f)	((f) >> 8)

/*
 * DETACH, and every vCPU's KVM_RUN must end with KVM_EXIT_CARETAKER: those
 * vCPUs handed themselves over as they left KVM_RUN, DETACH the others.
 */
static void ct_guest_detach(struct ct_guest *g, int ct_fd)
{
	struct ct_runner *rn;
	__u32 i;

	TEST_ASSERT(!ct_detach(ct_fd), "DETACH: %s", strerror(errno));
	for (i = 0; i < g->nr_vcpus; i++) {
		rn = &g->runners[i];
		/* Only ct_runner_wait(), below, clears @active. */
		if (!rn->active)
			continue;
		TEST_ASSERT(ct_runner_wait(rn, CT_WAIT_MS),
			    "vCPU%u still in KVM_RUN after DETACH returned", i);
		TEST_ASSERT(rn->ret == 0 && rn->exit_reason == KVM_EXIT_CARETAKER,
			    "vCPU%u: DETACH ended KVM_RUN with %d errno %d exit %u (%s)",
			    i, rn->ret, rn->err, rn->exit_reason,
			    exit_reason_str(rn->exit_reason));
	}
}

/*
 * Send what a new VMM needs: @h, completed with the VM's layout, the
 * caretaker fd unless it is negative, the memfds and the irqfd's eventfd
 * if the VM has one.
 */
static void ct_guest_hand_over(int sock, const struct ct_guest *g, struct ct_handover *h,
			       int ct_fd)
{
	int fds[CT_MAX_FDS], nr_fds = 0;
	__u32 i;

	h->nr_vcpus = g->nr_vcpus;
	for (i = 0; i < g->nr_vcpus; i++)
		h->vcpu_ids[i] = g->vcpus[i]->id;
	h->nr_slots = g->nr_slots;
	memcpy(h->slots, g->slots, sizeof(h->slots));
	h->beat_gpa = g->beat_gpa;
	h->nr_eventfds = g->eventfd >= 0;
	if (ct_fd >= 0)
		fds[nr_fds++] = ct_fd;
	for (i = 0; i < g->nr_slots; i++)
		fds[nr_fds++] = g->memfds[i];
	if (g->eventfd >= 0)
		fds[nr_fds++] = g->eventfd;
	ct_send_handover(sock, h, fds, nr_fds);
}

static void ct_vmm_a(int sock, __u32 nr_vcpus, unsigned int flags)
{
	struct ct_handover *h = calloc(1, sizeof(*h));
	struct ct_guest g;
	int ct_fd, r;
	__u32 i;

	TEST_ASSERT(h, "calloc");
	if (flags & CT_A_IRQFD) {
		TEST_ASSERT(nr_vcpus == 1, "an irqfd guest has one vCPU");
		ct_guest_create_irq(&g);
	} else if (flags & CT_A_TIMER) {
		TEST_ASSERT(nr_vcpus == 1, "a timer guest has one vCPU");
		ct_guest_create_timer(&g, CT_A_TIMER_MODE(flags));
	} else if (flags & CT_A_APIC) {
		TEST_ASSERT(nr_vcpus == 1, "an APIC guest has one vCPU");
		ct_guest_create_apic(&g);
	} else if (flags & CT_A_TRAIL) {
		TEST_ASSERT(nr_vcpus == 1, "a trail guest has one vCPU");
		__ct_guest_create(&g, 1, guest_trail, CT_TRAIL_PAGES);
	} else {
		ct_guest_create(&g, nr_vcpus);
	}
	ct_guest_run(&g);
	if (flags & CT_A_TIMER)
		ct_wait_ticks(g.beats, 5, "under VMM A");
	ct_expect_beats(g.beats, nr_vcpus, flags & CT_A_TIMER ? 5 : CT_BEATS_ALIVE,
			"under VMM A");
	if (flags & CT_A_IRQFD) {
		/* The route works: one signal, one interrupt. */
		TEST_ASSERT(!eventfd_write(g.eventfd, 1), "eventfd_write: %s", strerror(errno));
		ct_wait_irqs(&g.beats[0], 1, "under VMM A");
	}

	ct_fd = ct_prepare(g.vm, ct_cpus, nr_vcpus);
	TEST_ASSERT(ct_fd >= 0, "PREPARE: %s", strerror(errno));
	TEST_ASSERT(fcntl(ct_fd, F_GETFD) & FD_CLOEXEC, "the caretaker fd is not O_CLOEXEC");
	ct_expect_status(ct_fd, KVM_CARETAKER_STATE_PREPARED, nr_vcpus);
	for (i = 0; i < nr_vcpus; i++)
		ct_expect_cpu_parked(ct_cpus[i]);
	r = ct_add_scratch_slot(g.vm);
	TEST_ASSERT(r == -1 && errno == EBUSY,
		    "memslot change after PREPARE: %d errno %d, expected EBUSY", r, errno);
	/* Prepared, the guest still runs under its VMM. */
	ct_expect_beats(g.beats, nr_vcpus, CT_BEATS_ALIVE, "after PREPARE");

	/* Pause, as a VMM does to save a vCPU, and go on. */
	ct_guest_pause(&g);
	for (i = 0; i < nr_vcpus; i++)
		ct_save_vcpu(g.vcpus[i], &h->state[i]);
	vm_ioctl(g.vm, KVM_GET_CLOCK, &h->clock);
	ct_guest_run(&g);
	ct_expect_beats(g.beats, nr_vcpus, CT_BEATS_ALIVE, "after the pause");
	if (flags & CT_A_LAST_IDLE)
		/* As a VMM that paused one vCPU: DETACH itself hands it over. */
		ct_runner_pause(&g.runners[nr_vcpus - 1]);

	ct_guest_detach(&g, ct_fd);
	ct_expect_status(ct_fd, KVM_CARETAKER_STATE_DETACHED, nr_vcpus);
	/* No thread of ours is in KVM_RUN: this is the guest on its parked CPUs. */
	ct_expect_beats(g.beats, nr_vcpus, CT_BEATS_ALIVE, "after DETACH");

	for (i = 0; i < nr_vcpus; i++)
		ct_expect_vcpu_held(&g.runners[i], g.vcpus[i], &h->state[i].regs, "after DETACH");
	ct_expect_vm_held(g.vm, "after DETACH");
	if (flags & CT_A_DETACH_TWICE) {
		/* EBUSY, not EINVAL: the request is fine, the state is not. */
		EXPECT_REFUSED(ct_detach(ct_fd), EBUSY,
			       "the orphan is not in the prepared state");
		ct_expect_status(ct_fd, KVM_CARETAKER_STATE_DETACHED, nr_vcpus);
	}

	ct_guest_hand_over(sock, &g, h, ct_fd);

	if (flags & CT_A_LINGER) {
		sleep(CT_CHILD_MS / 1000);
		TEST_FAIL("VMM A was not killed");
	}
}

/* Fork VMM A running @fn(sock, @arg); *@sock is the holder's end. */
static pid_t ct_spawn_vmm_a(int *sock, void (*fn)(int sock, void *arg), void *arg)
{
	int sv[2];
	pid_t pid;

	TEST_ASSERT(!socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), "socketpair");
	pid = ct_fork();
	if (!pid) {
		close(sv[0]);
		fn(sv[1], arg);
		exit(KSFT_PASS);
	}
	close(sv[1]);
	*sock = sv[0];
	return pid;
}

/* Take over what VMM A hands over, or fail with how it ended. */
static void ct_take_over(int sock, pid_t pid, struct ct_orphan *o, bool with_ct_fd)
{
	int status;

	if (!ct_recv_handover(sock, o, with_ct_fd)) {
		status = ct_wait_child(pid, "VMM A");
		TEST_FAIL("VMM A failed before handing over (wait status %#x)", status);
	}
}

/* The holder's mappings: the heartbeats, and the figures VMM B reports. */
static void ct_orphan_map(struct ct_orphan *o)
{
	o->beats = ct_map_beats(o);
	o->fig = mmap(NULL, getpagesize(), PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	TEST_ASSERT(o->fig != MAP_FAILED, "mmap");
}

struct ct_vmm_a_args {
	__u32 nr_vcpus;
	unsigned int flags;
};

static void ct_vmm_a_main(int sock, void *arg)
{
	const struct ct_vmm_a_args *a = arg;

	ct_vmm_a(sock, a->nr_vcpus, a->flags);
}

/*
 * Run VMM A and take over what it hands over.  VMM A has exited (or has
 * been SIGKILLed) when this returns: the orphan has no VMM.
 */
static struct ct_orphan *ct_orphan_make(__u32 nr_vcpus, unsigned int flags)
{
	struct ct_vmm_a_args args = { .nr_vcpus = nr_vcpus, .flags = flags };
	struct ct_orphan *o = calloc(1, sizeof(*o));
	int sock, status;
	pid_t pid;
	__u32 k;

	TEST_ASSERT(o, "calloc");
	pid = ct_spawn_vmm_a(&sock, ct_vmm_a_main, &args);
	ct_take_over(sock, pid, o, true);
	close(sock);
	if (flags & CT_A_LINGER) {
		kill(pid, SIGKILL);
		status = ct_wait_child(pid, "VMM A");
		TEST_ASSERT(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
			    "VMM A: wait status %#x, expected SIGKILL", status);
	} else {
		ct_expect_child_passed(pid, "VMM A");
	}

	ct_orphan_map(o);
	ct_expect_status(o->ct_fd, KVM_CARETAKER_STATE_DETACHED, nr_vcpus);
	for (k = 0; k < nr_vcpus; k++)
		ct_expect_cpu_parked(ct_cpus[k]);
	return o;
}

/* Drop the holder's references; the orphan must go and give its CPUs back. */
static int ct_orphan_close(struct ct_orphan *o)
{
	int ms = 0;
	__u32 i;

	/* A classic restart's "orphan" has none. */
	if (o->ct_fd >= 0)
		TEST_ASSERT(!close(o->ct_fd), "close the caretaker fd");
	for (i = 0; i < o->h.nr_slots; i++)
		close(o->memfds[i]);
	if (o->eventfd >= 0)
		close(o->eventfd);
	for (i = 0; i < o->h.nr_vcpus; i++)
		ms = max(ms, ct_wait_cpu_online(ct_cpus[i]));
	munmap(o->beats, getpagesize());
	munmap(o->fig, getpagesize());
	free(o);
	return ms;
}

/* ---- VMM B: a new VM that matches the orphan, without writing its memory ---- */

enum ct_flaw {
	CT_FLAW_NONE,
	CT_FLAW_EXTRA_VCPU,	/* one vCPU more than the orphan */
	CT_FLAW_VCPU_ID,	/* the same number of vCPUs, other ids */
	CT_FLAW_CPUID,		/* one CPUID bit differs */
	CT_FLAW_MEMFD,		/* memslot 0 backed by another memfd */
};

/* What caretaker.ko logs when it refuses each. */
static const char * const ct_flaw_reasons[] = {
	[CT_FLAW_EXTRA_VCPU] = "the adopting VM has another number of vCPUs",
	[CT_FLAW_VCPU_ID] = "the adopting VM's vCPU ids differ",
	[CT_FLAW_CPUID] = "the adopting vCPU's CPUID differs",
	[CT_FLAW_MEMFD] = "a memslot of the adopting VM maps other memory",
};

struct ct_adopter {
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpus[CT_MAX_VCPUS + 1];
	struct ct_runner runners[CT_MAX_VCPUS + 1];
	__u32 nr_vcpus;
	void *hva[CT_MAX_SLOTS];
	__u32 nr_slots;
	int stray_memfd;
	struct ct_beat *beats;		/* through VMM B's own mapping */
};

static void ct_cpuid_flip_bit(struct kvm_cpuid2 *cpuid)
{
	__u32 i;

	/* CPUID.1:ECX.SSE4_2, which KVM never changes at runtime. */
	for (i = 0; i < cpuid->nent; i++) {
		if (cpuid->entries[i].function == 1 && cpuid->entries[i].index == 0) {
			cpuid->entries[i].ecx ^= 1u << 20;
			return;
		}
	}
	TEST_FAIL("no CPUID leaf 1");
}

/*
 * The library's vm_create() loads the ELF, builds page tables and
 * descriptor tables and initialises ucalls, all by writing guest memory;
 * none of it may happen here.  vm_create_barebones() only opens the VM;
 * memslots go in with the raw ioctl over mappings of the same memfds;
 * vCPUs are created as vm_arch_vcpu_recreate() does, but with the
 * orphan's CPUID rather than KVM_GET_SUPPORTED_CPUID's.
 */
static void ct_adopter_create(struct ct_adopter *a, const struct ct_orphan *o,
			      enum ct_flaw flaw)
{
	const struct ct_handover *h = &o->h;
	const struct ct_vcpu_state *s;
	struct kvm_cpuid2 *cpuid;
	const struct ct_slot *sl;
	__u32 i, id, k;
	int fd;

	memset(a, 0, sizeof(*a));
	a->stray_memfd = -1;
	a->vm = vm_create_barebones();
	vm_enable_cap(a->vm, KVM_CAP_CARETAKER, 0);
	vm_create_irqchip(a->vm);

	a->nr_slots = h->nr_slots;
	for (i = 0; i < h->nr_slots; i++) {
		sl = &h->slots[i];
		fd = o->memfds[i];
		if (flaw == CT_FLAW_MEMFD && i == 0) {
			fd = memfd_create("caretaker-stray", 0);
			a->stray_memfd = fd;
			TEST_ASSERT(fd >= 0 && !ftruncate(fd, sl->offset + sl->size),
				    "stray memfd");
		}
		a->hva[i] = mmap(NULL, sl->size, PROT_READ | PROT_WRITE, MAP_SHARED,
				 fd, sl->offset);
		TEST_ASSERT(a->hva[i] != MAP_FAILED, "mmap memslot %u", sl->slot);
		vm_set_user_memory_region(a->vm, sl->slot, sl->flags, sl->gpa,
					  sl->size, a->hva[i]);
	}
	k = ct_gpa_slot(h, h->beat_gpa);
	a->beats = (void *)((char *)a->hva[k] + (h->beat_gpa - h->slots[k].gpa));

	a->nr_vcpus = h->nr_vcpus + (flaw == CT_FLAW_EXTRA_VCPU);
	for (i = 0; i < a->nr_vcpus; i++) {
		s = &h->state[min(i, h->nr_vcpus - 1)];
		if (i >= h->nr_vcpus)
			id = h->vcpu_ids[h->nr_vcpus - 1] + 1;
		else if (flaw == CT_FLAW_VCPU_ID)
			id = h->vcpu_ids[i] + CT_MAX_VCPUS;
		else
			id = h->vcpu_ids[i];
		a->vcpus[i] = __vm_vcpu_add(a->vm, id);

		cpuid = allocate_kvm_cpuid2(s->nr_cpuid);
		memcpy(cpuid->entries, s->cpuid, s->nr_cpuid * sizeof(s->cpuid[0]));
		if (flaw == CT_FLAW_CPUID)
			ct_cpuid_flip_bit(cpuid);
		vcpu_init_cpuid(a->vcpus[i], cpuid);
		free(cpuid);
		/*
		 * After a kexec: on this host's TSC as it is, unscaled, as the
		 * orphan ran.  The new kernel calibrated the same TSC anew, and
		 * KVM may have taken its VMs' default rate before the
		 * calibration was refined (then a new vCPU asks for a rate
		 * below the host's, which a host without TSC scaling cannot
		 * give).
		 */
		if (ct_tsc_unscaled)
			vcpu_ioctl(a->vcpus[i], KVM_SET_TSC_KHZ, NULL);
	}
}

static void ct_adopter_run(struct ct_adopter *a)
{
	ct_runners_start(a->runners, a->vcpus, a->nr_vcpus);
}

/*
 * ATTACH as a VMM that restarts for speed does it: from vCPU 0's thread,
 * which enters KVM_RUN right after, the other vCPU threads already
 * started and waiting, so that between the runtime's stop and the
 * guest's first VMRUN under KVM there is no thread to create or wake.
 * Ready: the threads start, each enters KVM_RUN once with immediate_exit
 * (KVM's one-time work for a new VM and thread), and they wait; then
 * ATTACH_PREPARE loads the state, so that ATTACH only loads what the
 * guest changed since.
 */
static void ct_adopter_attach_ready(struct ct_adopter *a, int ct_fd, int *go)
{
	struct ct_runner *lead = &a->runners[0];
	__u32 i;
	int ms;

	*go = 0;
	for (i = 0; i < a->nr_vcpus; i++) {
		a->runners[i].attach_vm = i ? NULL : a->vm;
		a->runners[i].attach_fd = ct_fd;
		a->runners[i].leader = i ? lead : NULL;
		a->runners[i].go = go;
		a->runners[i].followers = !i && a->nr_vcpus > 1;
		a->runners[i].attached = 0;
		a->runners[i].warm = false;
	}
	for (i = 0; i < a->nr_vcpus; i++)
		ct_runner_start(&a->runners[i], a->vcpus[i]);
	for (i = 0; i < a->nr_vcpus; i++)
		for (ms = 0; !__atomic_load_n(&a->runners[i].warm, __ATOMIC_ACQUIRE); ms++) {
			TEST_ASSERT(ms < CT_WAIT_MS, "vCPU%u: no KVM_RUN with immediate_exit", i);
			ct_sleep_ms(1);
		}
	TEST_ASSERT(!ct_attach_prepare(a->vm, ct_fd), "ATTACH_PREPARE: %s", strerror(errno));
}

/*
 * Go: the leader ATTACHes at @at_ns (CLOCK_MONOTONIC; 0: at once): no
 * other thread has to wake it then.
 */
static void ct_adopter_attach_go(struct ct_adopter *a, int *go, __u64 at_ns)
{
	a->runners[0].attach_at_ns = at_ns;
	__atomic_store_n(go, 1, __ATOMIC_RELEASE);
	syscall(SYS_futex, go, FUTEX_WAKE, INT32_MAX, NULL, NULL, 0);
}

/* ATTACH's result, errno set; the runners run on only if 0. */
static int ct_adopter_attach_wait(struct ct_adopter *a)
{
	struct ct_runner *lead = &a->runners[0];
	__u32 i;

	while (!__atomic_load_n(&lead->attached, __ATOMIC_ACQUIRE))
		ct_sleep_ms(1);
	if (lead->attached > 0)
		return 0;
	for (i = 0; i < a->nr_vcpus; i++)
		ct_runner_wait(&a->runners[i], CT_WAIT_MS);
	errno = lead->attach_err;
	return -1;
}

static void ct_adopter_pause(struct ct_adopter *a)
{
	ct_runners_pause(a->runners, a->nr_vcpus);
}

static void ct_adopter_free(struct ct_adopter *a, const struct ct_orphan *o)
{
	__u32 i;

	for (i = 0; i < a->nr_vcpus; i++)
		ct_runner_stop(&a->runners[i]);
	kvm_vm_free(a->vm);
	for (i = 0; i < a->nr_slots; i++)
		munmap(a->hva[i], o->h.slots[i].size);
	if (a->stray_memfd >= 0)
		close(a->stray_memfd);
}

/* ATTACH, and everything that must hold right after it. */
/*
 * What a VMM does before ATTACH so that the guest does not wait for
 * KVM's page faults after it: map the whole memory in KVM's page tables
 * (KVM_PRE_FAULT_MEMORY), while the guest still runs on the caretaker.
 */
static void ct_prefault(struct ct_adopter *a, struct ct_orphan *o)
{
	struct kvm_pre_fault_memory range;
	__u32 i;
	int r;

	for (i = 0; i < o->h.nr_slots; i++) {
		range = (struct kvm_pre_fault_memory){
			.gpa = o->h.slots[i].gpa,
			.size = o->h.slots[i].size,
		};
		do {
			r = ioctl(a->vcpus[0]->fd, KVM_PRE_FAULT_MEMORY, &range);
		} while (r < 0 && (errno == EINTR || errno == EAGAIN));
		TEST_ASSERT(!r && !range.size, "KVM_PRE_FAULT_MEMORY of slot %u: %s",
			    o->h.slots[i].slot, strerror(errno));
	}
}

/*
 * ATTACH_PREPARE: from then on the adopter's vCPUs refuse KVM_RUN and
 * changes, and its memslots are frozen, while the guest runs on.
 */
static void ct_prepare_adoption(struct ct_adopter *a, struct ct_orphan *o)
{
	struct kvm_regs regs;
	__u32 i;
	int r;

	TEST_ASSERT(!ct_attach_prepare(a->vm, o->ct_fd), "ATTACH_PREPARE: %s",
		    strerror(errno));
	for (i = 0; i < a->nr_vcpus; i++) {
		vcpu_regs_get(a->vcpus[i], &regs);
		ct_expect_vcpu_held(&a->runners[i], a->vcpus[i], &regs, "after ATTACH_PREPARE");
	}
	ct_expect_vm_held(a->vm, "after ATTACH_PREPARE");
	r = ct_add_scratch_slot(a->vm);
	TEST_ASSERT(r == -1 && errno == EBUSY,
		    "memslot change after ATTACH_PREPARE: %d errno %d, expected EBUSY", r, errno);
	ct_expect_status(o->ct_fd, KVM_CARETAKER_STATE_DETACHED, o->h.nr_vcpus);
}

static void ct_adopt_as(struct ct_adopter *a, struct ct_orphan *o, bool prepare)
{
	struct kvm_caretaker_status st;
	__u32 i;

	ct_prefault(a, o);
	if (prepare)
		ct_prepare_adoption(a, o);
	TEST_ASSERT(!ct_attach(a->vm, o->ct_fd), "ATTACH: %s", strerror(errno));
	st = ct_expect_status(o->ct_fd, KVM_CARETAKER_STATE_ATTACHED, o->h.nr_vcpus);
	o->fig->attach_stall_ns = st.stall_ns;
	for (i = 0; i < o->h.nr_vcpus; i++)
		ct_wait_cpu_online(ct_cpus[i]);
}

static void ct_adopt(struct ct_adopter *a, struct ct_orphan *o)
{
	ct_adopt_as(a, o, false);
}

/* Under VMM B: every vCPU counts on, and its TSC did not go back. */
static void ct_expect_running_under_b(struct ct_adopter *a, struct ct_orphan *o)
{
	__u64 c0[CT_MAX_VCPUS], start = ct_now_ns();
	__u32 i;

	for (i = 0; i < o->h.nr_vcpus; i++)
		c0[i] = READ_ONCE(a->beats[i].counter);
	ct_expect_beats(a->beats, o->h.nr_vcpus, CT_BEATS_ALIVE, "under VMM B");
	ct_sleep_ms(CT_SHORT_GAP_MS);
	o->fig->ns = ct_now_ns() - start;
	o->fig->beats = READ_ONCE(a->beats[0].counter) - c0[0];
	for (i = 0; i < o->h.nr_vcpus; i++)
		TEST_ASSERT((__s64)(READ_ONCE(a->beats[i].tsc) - o->last_tsc[i]) > 0,
			    "vCPU%u: guest TSC went back across ATTACH: %#llx after %#llx",
			    i, (unsigned long long)READ_ONCE(a->beats[i].tsc),
			    (unsigned long long)o->last_tsc[i]);
}

/* OUT on command: VMM B sees the marker, and the guest goes on. */
static void ct_expect_out_under_b(struct ct_adopter *a, __u32 i)
{
	struct ct_runner *r = &a->runners[i];
	__u64 done = READ_ONCE(a->beats[i].done);

	WRITE_ONCE(a->beats[i].command, CT_CMD_OUT);
	if (!ct_runner_wait(r, CT_WAIT_MS)) {
		ct_runner_stop(r);
		TEST_FAIL("vCPU%u: no exit for the OUT in %d ms", i, CT_WAIT_MS);
	}
	ct_expect_marker(r);
	ct_runner_start(r, a->vcpus[i]);
	ct_expect_done(&a->beats[i], done + 1, "the OUT");
}

static bool ct_msr_changes_by_itself(__u32 index)
{
	switch (index) {
	case MSR_IA32_TSC:
	case MSR_IA32_MPERF:
	case MSR_IA32_APERF:
	case HV_X64_MSR_TIME_REF_COUNT:
	case HV_X64_MSR_VP_RUNTIME:	/* the vCPU thread's run time */
	/*
	 * Read-only, the vCPU's TSC rate as this kernel calibrated the
	 * host's TSC: after a kexec the same TSC may read a few ppm apart.
	 */
	case HV_X64_MSR_TSC_FREQUENCY:
		return true;
	}
	return false;
}

static void ct_expect_same(struct kvm_vcpu *vcpu, const char *what,
			   const void *got, const void *want, size_t size)
{
	TEST_ASSERT(!memcmp(got, want, size),
		    "vCPU%u: %s differ from VMM A's, first at byte %d",
		    vcpu->id, what, ct_first_diff(got, want, size));
}

/*
 * The adopted vCPU must be the one VMM A paused, but for what the guest
 * loop changes by running: its general registers other than RSP (the loop
 * neither calls nor pushes), RIP and flags, and the TSC.  The guest TSC
 * minus the host TSC must not have changed: compare the TSC offsets.
 * XSAVE state is left out: nothing here touches it, and KVM's buffer has
 * layout slack that is not guest state.
 */
static void ct_expect_same_state(struct kvm_vcpu *vcpu, const struct ct_vcpu_state *s)
{
	struct kvm_lapic_state lapic;
	struct kvm_debugregs dregs;
	struct kvm_vcpu_events ev;
	struct kvm_sregs sregs;
	struct kvm_mp_state mp;
	struct kvm_xcrs xcrs;
	struct kvm_regs regs;
	struct kvm_msrs *msrs;
	__u64 off;
	__u32 i;

	vcpu_sregs_get(vcpu, &sregs);
	ct_expect_same(vcpu, "sregs", &sregs, &s->sregs, sizeof(sregs));
	vcpu_debugregs_get(vcpu, &dregs);
	ct_expect_same(vcpu, "debug registers", &dregs, &s->debugregs, sizeof(dregs));
	if (kvm_has_cap(KVM_CAP_XCRS)) {
		vcpu_xcrs_get(vcpu, &xcrs);
		ct_expect_same(vcpu, "XCRs", &xcrs, &s->xcrs, sizeof(xcrs));
	}
	vcpu_events_get(vcpu, &ev);
	ct_expect_same(vcpu, "vCPU events", &ev, &s->events, sizeof(ev));
	vcpu_mp_state_get(vcpu, &mp);
	TEST_ASSERT(mp.mp_state == s->mp_state.mp_state, "vCPU%u: mp_state %u, was %u",
		    vcpu->id, mp.mp_state, s->mp_state.mp_state);
	vcpu_regs_get(vcpu, &regs);
	TEST_ASSERT(regs.rsp == s->regs.rsp, "vCPU%u: RSP %#llx, was %#llx",
		    vcpu->id, regs.rsp, s->regs.rsp);

	/* The current count of a timer the guest never armed is 0 anyway. */
	vcpu_ioctl(vcpu, KVM_GET_LAPIC, &lapic);
	TEST_ASSERT(!memcmp(lapic.regs, s->lapic.regs, APIC_TMCCT) &&
		    !memcmp(lapic.regs + APIC_TMCCT + 4, s->lapic.regs + APIC_TMCCT + 4,
			    sizeof(lapic.regs) - APIC_TMCCT - 4),
		    "vCPU%u: local APIC differs from VMM A's, first at %#x", vcpu->id,
		    ct_first_diff(lapic.regs, s->lapic.regs, sizeof(lapic.regs)));

	msrs = calloc(1, sizeof(*msrs) + s->nr_msrs * sizeof(msrs->entries[0]));
	TEST_ASSERT(msrs, "calloc");
	msrs->nmsrs = s->nr_msrs;
	for (i = 0; i < s->nr_msrs; i++)
		msrs->entries[i].index = s->msrs[i].index;
	vcpu_msrs_get(vcpu, msrs);
	for (i = 0; i < s->nr_msrs; i++) {
		if (ct_msr_changes_by_itself(s->msrs[i].index))
			continue;
		TEST_ASSERT(msrs->entries[i].data == s->msrs[i].data,
			    "vCPU%u: MSR %#x is %#llx, was %#llx", vcpu->id,
			    s->msrs[i].index, msrs->entries[i].data, s->msrs[i].data);
	}
	free(msrs);

	vcpu_device_attr_get(vcpu, KVM_VCPU_TSC_CTRL, KVM_VCPU_TSC_OFFSET, &off);
	TEST_ASSERT(off == s->tsc_offset, "vCPU%u: TSC offset %#llx, was %#llx",
		    vcpu->id, (unsigned long long)off,
		    (unsigned long long)s->tsc_offset);
}

/* Run @fn as VMM B, a child of the holder, and wait for it. */
static void ct_vmm_b(struct ct_orphan *o, void (*fn)(struct ct_orphan *o))
{
	pid_t pid = ct_fork();

	if (!pid) {
		fn(o);
		exit(KSFT_PASS);
	}
	ct_expect_child_passed(pid, "VMM B");
}

/* ---- cases ---- */

static void vmm_b_heartbeat(struct ct_orphan *o)
{
	struct ct_adopter a;

	ct_adopter_create(&a, o, CT_FLAW_NONE);
	ct_adopt(&a, o);
	ct_expect_same_state(a.vcpus[0], &o->h.state[0]);
	ct_adopter_run(&a);
	ct_expect_running_under_b(&a, o);
	ct_expect_out_under_b(&a, 0);
	ct_expect_beats(a.beats, 1, CT_BEATS_ALIVE, "after the OUT");
	ct_adopter_pause(&a);
	ct_adopter_free(&a, o);
}

static void test_heartbeat(void)
{
	struct ct_orphan *o = ct_orphan_make(1, 0);
	struct kvm_caretaker_status st;
	struct ct_gap g;
	char tail[160];

	st = ct_expect_status(o->ct_fd, KVM_CARETAKER_STATE_DETACHED, 1);
	ct_watch(o, CT_GAP_MS, &g);
	ct_expect_status(o->ct_fd, KVM_CARETAKER_STATE_DETACHED, 1);
	ct_vmm_b(o, vmm_b_heartbeat);
	snprintf(tail, sizeof(tail),
		 "; stalls: DETACH %llu us, ATTACH %llu us; under VMM B +%llu beats in %llu ms",
		 (unsigned long long)st.stall_ns / 1000,
		 (unsigned long long)o->fig->attach_stall_ns / 1000,
		 (unsigned long long)o->fig->beats,
		 (unsigned long long)o->fig->ns / 1000000);
	ct_print_gap("heartbeat", o, &g, tail);
	ct_orphan_close(o);
}

static void vmm_b_blocked_out(struct ct_orphan *o)
{
	struct ct_adopter a;
	struct ct_runner *r = &a.runners[0];

	ct_adopter_create(&a, o, CT_FLAW_NONE);
	ct_adopt(&a, o);
	/* The OUT the guest has been blocked on is B's first exit. */
	ct_run_once(r, a.vcpus[0], "the blocked OUT");
	ct_expect_marker(r);
	ct_runner_start(r, a.vcpus[0]);
	ct_expect_done(&a.beats[0], 1, "the OUT");
	ct_expect_running_under_b(&a, o);
	ct_adopter_pause(&a);
	ct_adopter_free(&a, o);
}

static void vmm_b_blocked_cpuid(struct ct_orphan *o)
{
	const struct kvm_cpuid_entry2 *e = NULL;
	const struct ct_vcpu_state *s = &o->h.state[0];
	struct ct_adopter a;
	__u32 i, got[4];

	for (i = 0; i < s->nr_cpuid; i++)
		if (s->cpuid[i].function == 0 && s->cpuid[i].index == 0)
			e = &s->cpuid[i];
	TEST_ASSERT(e, "no CPUID leaf 0 among VMM A's entries");

	ct_adopter_create(&a, o, CT_FLAW_NONE);
	ct_adopt(&a, o);
	/* KVM emulates the CPUID in the kernel: no exit to VMM B. */
	ct_adopter_run(&a);
	ct_expect_done(&a.beats[0], 1, "the CPUID");
	for (i = 0; i < 4; i++)
		got[i] = READ_ONCE(a.beats[0].cpuid[i]);
	TEST_ASSERT(got[0] == e->eax && got[1] == e->ebx && got[2] == e->ecx &&
		    got[3] == e->edx,
		    "CPUID(0) gave %#x %#x %#x %#x, the orphan's entry is %#x %#x %#x %#x",
		    got[0], got[1], got[2], got[3], e->eax, e->ebx, e->ecx, e->edx);
	ct_expect_running_under_b(&a, o);
	ct_adopter_pause(&a);
	ct_adopter_free(&a, o);
}

/* Returns how many ms it took to block. */
static int ct_block_on(struct ct_orphan *o, __u64 cmd)
{
	struct kvm_caretaker_status st;
	__u64 start = ct_now_ns();
	int ms;

	WRITE_ONCE(o->beats[0].command, cmd);
	for (ms = 0;; ms++) {
		st = ct_status(o->ct_fd);
		if (st.state == KVM_CARETAKER_STATE_BLOCKED)
			break;
		TEST_ASSERT(st.state == KVM_CARETAKER_STATE_DETACHED && ms < CT_WAIT_MS,
			    "GET_STATUS: state %u %d ms after command %llu, expected BLOCKED",
			    st.state, ms, (unsigned long long)cmd);
		ct_sleep_ms(1);
	}
	ms = (ct_now_ns() - start) / 1000000;
	ct_expect_still(&o->beats[0], "while blocked");
	st = ct_expect_status(o->ct_fd, KVM_CARETAKER_STATE_BLOCKED, 1);
	TEST_ASSERT(st.blocked_exits >= 1, "blocked_exits %llu",
		    (unsigned long long)st.blocked_exits);
	TEST_ASSERT(READ_ONCE(o->beats[0].done) == 0 && !READ_ONCE(o->beats[0].cpuid[1]),
		    "the guest carried out command %llu while detached",
		    (unsigned long long)cmd);
	return ms;
}

static void test_blocking(void)
{
	struct ct_orphan *o;
	struct ct_gap g;
	int ms_out, ms_cpuid;

	/* OUT: the exit is VMM B's to complete. */
	o = ct_orphan_make(1, 0);
	ct_watch(o, CT_SHORT_GAP_MS, &g);
	ms_out = ct_block_on(o, CT_CMD_OUT);
	ct_expect_blocked_on(o->ct_fd, SVM_EXIT_IOIO, KVM_CARETAKER_EXIT_IO);
	ct_vmm_b(o, vmm_b_blocked_out);
	ct_orphan_close(o);

	/*
	 * CPUID, with the runtime's fast path off: KVM's to complete once
	 * adopted (cpuid_in_gap has it on).
	 */
	ct_param_set("fastpath", "N");
	o = ct_orphan_make(1, 0);
	ct_watch(o, CT_SHORT_GAP_MS, &g);
	ms_cpuid = ct_block_on(o, CT_CMD_CPUID);
	ct_expect_blocked_on(o->ct_fd, SVM_EXIT_CPUID, KVM_CARETAKER_EXIT_CPUID);
	ct_vmm_b(o, vmm_b_blocked_cpuid);
	ct_orphan_close(o);
	ct_param_set("fastpath", "Y");

	printf("# blocking: blocked %d ms after OUT, %d ms after CPUID; both done after ATTACH\n",
	       ms_out, ms_cpuid);
}

/* Run guest command @cmd while detached; it must not block.  Returns ms. */
static int ct_gap_command(struct ct_orphan *o, __u64 cmd, const char *what)
{
	__u64 done = READ_ONCE(o->beats[0].done);
	int ms;

	memset(o->beats[0].cpuid, 0, sizeof(o->beats[0].cpuid));
	WRITE_ONCE(o->beats[0].command, cmd);
	for (ms = 0; READ_ONCE(o->beats[0].done) == done; ms++) {
		TEST_ASSERT(ms < CT_WAIT_MS, "%s did not complete while detached (state %u)",
			    what, ct_status(o->ct_fd).state);
		ct_sleep_ms(1);
	}
	return ms;
}

static struct ct_cpuid_log *ct_cpuid_log(struct ct_beat *beats)
{
	return (void *)((char *)beats + CT_CPUID_LOG_OFF);
}

/* VMM B: the same sequence under KVM; every answer must be the runtime's. */
static void vmm_b_cpuid_set(struct ct_orphan *o)
{
	struct ct_cpuid_log *l;
	struct ct_adopter a;
	__u32 i;

	ct_adopter_create(&a, o, CT_FLAW_NONE);
	ct_adopt(&a, o);
	l = ct_cpuid_log(a.beats);
	ct_adopter_run(&a);
	WRITE_ONCE(l->pass, 1);
	WRITE_ONCE(a.beats[0].command, CT_CMD_CPUID_SET);
	ct_expect_done(&a.beats[0], 2, "the CPUIDs under KVM");
	for (i = 0; i < CT_CPUID_Q; i++)
		TEST_ASSERT(!memcmp(l->r[0][i], l->r[1][i], sizeof(l->r[0][i])),
			    "CPUID #%u: detached %#x %#x %#x %#x, KVM %#x %#x %#x %#x", i,
			    l->r[0][i][0], l->r[0][i][1], l->r[0][i][2], l->r[0][i][3],
			    l->r[1][i][0], l->r[1][i][1], l->r[1][i][2], l->r[1][i][3]);
	TEST_ASSERT_EQ(l->cpuids[1], l->cpuids[0]);
	ct_expect_running_under_b(&a, o);
	ct_adopter_pause(&a);
	ct_adopter_free(&a, o);
}

/*
 * The fast path: while detached the runtime answers CPUID (and XSETBV)
 * itself, as KVM would, and the guest does not block.  On this test host
 * (no next-RIP save) it needs the fixed_insn_len parameter.
 */
static void test_cpuid_in_gap(void)
{
	struct kvm_caretaker_vcpu_status vs;
	__u64 cpuids, xsetbvs;
	struct ct_cpuid_log *l;
	struct ct_orphan *o;
	int ms;

	ct_param_set("fixed_insn_len", "Y");
	o = ct_orphan_make(1, 0);
	l = ct_cpuid_log(o->beats);
	WRITE_ONCE(l->pass, 0);
	ms = ct_gap_command(o, CT_CMD_CPUID_SET, "the CPUIDs");
	ct_expect_status(o->ct_fd, KVM_CARETAKER_STATE_DETACHED, 1);
	vs = ct_vcpu_status(o->ct_fd, 0);
	TEST_ASSERT(vs.handled_by_kind[KVM_CARETAKER_EXIT_CPUID] == l->cpuids[0] &&
		    vs.exits_by_kind[KVM_CARETAKER_EXIT_CPUID] == l->cpuids[0] &&
		    vs.handled_by_kind[KVM_CARETAKER_EXIT_XSETBV] == l->xsetbvs[0],
		    "telemetry: %llu CPUID exits, %llu handled, %llu XSETBVs handled; the guest made %llu and %llu",
		    (unsigned long long)vs.exits_by_kind[KVM_CARETAKER_EXIT_CPUID],
		    (unsigned long long)vs.handled_by_kind[KVM_CARETAKER_EXIT_CPUID],
		    (unsigned long long)vs.handled_by_kind[KVM_CARETAKER_EXIT_XSETBV],
		    (unsigned long long)l->cpuids[0], (unsigned long long)l->xsetbvs[0]);
	ct_expect_beats(o->beats, 1, CT_BEATS_ALIVE, "after the CPUIDs");
	cpuids = l->cpuids[0];
	xsetbvs = l->xsetbvs[0];
	ct_vmm_b(o, vmm_b_cpuid_set);
	ct_orphan_close(o);
	ct_param_set("fixed_insn_len", "N");
	printf("# cpuid_in_gap: %llu CPUIDs and %llu XSETBVs answered by the runtime",
	       (unsigned long long)cpuids, (unsigned long long)xsetbvs);
	printf(" in %d ms, no block; the same %u answers from KVM after ATTACH\n",
	       ms, CT_CPUID_Q);
}

/* The p99 of the lateness buckets, as the bucket's upper bound in us; 0: none. */
static __u64 ct_late_p99_us(const __u64 *late)
{
	__u64 seen = 0, n = 0;
	int b;

	for (b = 0; b < CT_LATE_BUCKETS; b++)
		n += late[b];
	if (!n)
		return 0;
	for (b = 0; b < CT_LATE_BUCKETS; b++) {
		seen += late[b];
		if (seen * 100 >= n * 99)
			return 1ULL << b;
	}
	return 1ULL << CT_LATE_BUCKETS;
}

/* Periods that may collapse into late ticks in 1 s (of ~500) on this test host. */
#define CT_MAX_COLLAPSED	10

struct ct_tick_figs {
	__u64 ticks, early, doubled, collapsed, max_late_us, p99_us;
};

static void ct_tick_figs(const struct ct_timer_log *tl, const struct ct_timer_log *before,
			 struct ct_tick_figs *f)
{
	__u64 late[CT_LATE_BUCKETS];
	int b;

	for (b = 0; b < CT_LATE_BUCKETS; b++)
		late[b] = tl->late[b] - before->late[b];
	f->ticks = tl->ticks - before->ticks;
	f->early = tl->early - before->early;
	f->doubled = tl->doubled - before->doubled;
	f->collapsed = tl->collapsed - before->collapsed;
	f->max_late_us = tl->max_late / tl->tsc_per_us;
	f->p99_us = ct_late_p99_us(late);
}

static void vmm_b_timer(struct ct_orphan *o)
{
	struct ct_adopter a;
	struct ct_timer_log *tl, before, after;
	struct ct_tick_figs f;

	ct_adopter_create(&a, o, CT_FLAW_NONE);
	/*
	 * Prepared: the preloaded local APIC's timer runs in KVM until
	 * ATTACH, which must then load the APIC again, not keep it.
	 */
	ct_adopt_as(&a, o, true);
	tl = ct_timer_log(a.beats);
	/*
	 * A timer armed in the gap fires under KVM; ticks go on.  The
	 * runtime may have stopped the guest inside its handler (at its
	 * EOI, say): the log is consistent only once the guest runs again.
	 */
	ct_adopter_run(&a);
	ct_timer_snap(tl, &before);
	ct_wait_ticks(a.beats, 50, "under VMM B");
	ct_timer_snap(tl, &after);
	ct_tick_figs(&after, &before, &f);
	/* KVM's accuracy is reported, not asserted: this test is the runtime's. */
	printf("# under VMM B: %llu ticks, %llu early, %llu doubled, p99 late <= %llu us\n",
	       (unsigned long long)f.ticks, (unsigned long long)f.early,
	       (unsigned long long)f.doubled, (unsigned long long)f.p99_us);
	ct_adopter_pause(&a);
	ct_adopter_free(&a, o);
}

/*
 * The guest's own timer tick while detached: the runtime halts with the
 * guest, fires its timer, injects the vector, completes the EOI and the
 * re-arm; none early, none lost.  Periodic: the count over the gap is
 * the elapsed guest TSC over the period, +-1.
 */
static void ct_timer_in_gap(unsigned int mode, const char *name)
{
	struct kvm_caretaker_vcpu_status vs;
	struct ct_timer_log *tl, t0, t1;
	struct ct_tick_figs f;
	struct ct_orphan *o;
	__u64 expect;

	ct_param_set("fixed_insn_len", "Y");
	o = ct_orphan_make(1, CT_A_TIMER | (mode << 8));
	tl = ct_timer_log(o->beats);
	/* The timer armed under VMM A fires in the gap. */
	ct_wait_ticks(o->beats, 1, "right after DETACH");
	ct_timer_snap(tl, &t0);
	ct_sleep_ms(1000);
	ct_timer_snap(tl, &t1);
	ct_expect_status(o->ct_fd, KVM_CARETAKER_STATE_DETACHED, 1);
	ct_tick_figs(&t1, &t0, &f);
	TEST_ASSERT(f.ticks >= 10, "%s: %llu ticks in 1 s detached", name,
		    (unsigned long long)f.ticks);
	TEST_ASSERT(!f.early,
		    "%s: %llu of %llu ticks came early while detached (the last by %llu us, %llu us after the tick before)",
		    name, (unsigned long long)f.early, (unsigned long long)f.ticks,
		    (unsigned long long)(t1.early_by / t1.tsc_per_us),
		    (unsigned long long)(t1.early_gap / t1.tsc_per_us));
	/* This host's double deliveries: seen 0 to 2 a second. */
	TEST_ASSERT(f.doubled * 100 <= f.ticks, "%s: %llu of %llu ticks came twice while detached",
		    name, (unsigned long long)f.doubled, (unsigned long long)f.ticks);
	expect = (t1.last_tsc - t0.last_tsc) / t1.period_tsc;
	/*
	 * Periodic: every period a tick, +-1, but for periods that collapsed
	 * into a late tick, as on an APIC; a few of those only (a lost tick
	 * shows as one).  The guest's count of collapsed periods can be one
	 * high for a late tick whose successor came sooner, so it explains
	 * missing ticks only.
	 */
	if (mode == CT_TM_PERIODIC)
		TEST_ASSERT(f.ticks - f.doubled + f.collapsed + 1 >= expect &&
			    f.ticks - f.doubled <= expect + 1 &&
			    f.collapsed <= CT_MAX_COLLAPSED,
			    "%s: %llu ticks (%llu doubled, %llu collapsed) while the guest TSC made %llu periods",
			    name, (unsigned long long)f.ticks, (unsigned long long)f.doubled,
			    (unsigned long long)f.collapsed, (unsigned long long)expect);
	vs = ct_vcpu_status(o->ct_fd, 0);
	TEST_ASSERT(vs.handled_by_kind[KVM_CARETAKER_EXIT_HLT] >= f.ticks / 2 &&
		    vs.handled_by_kind[KVM_CARETAKER_EXIT_MSR] >= f.ticks &&
		    vs.timer_fires >= f.ticks && vs.injected >= f.ticks,
		    "%s: telemetry: %llu HLTs, %llu MSR accesses, %llu expiries, %llu injected for %llu ticks",
		    name, (unsigned long long)vs.handled_by_kind[KVM_CARETAKER_EXIT_HLT],
		    (unsigned long long)vs.handled_by_kind[KVM_CARETAKER_EXIT_MSR],
		    (unsigned long long)vs.timer_fires, (unsigned long long)vs.injected,
		    (unsigned long long)f.ticks);
	printf("# %s: under VMM A %llu ticks, %llu early, %llu doubled\n", name,
	       (unsigned long long)t0.ticks, (unsigned long long)t0.early,
	       (unsigned long long)t0.doubled);
	printf("# %s: detached 1 s: %llu ticks (guest TSC: %llu periods),",
	       name, (unsigned long long)f.ticks, (unsigned long long)expect);
	printf(" none early, %llu doubled, %llu collapsed,", (unsigned long long)f.doubled,
	       (unsigned long long)f.collapsed);
	printf(" p99 late <= %llu us, max %llu us;", (unsigned long long)f.p99_us,
	       (unsigned long long)f.max_late_us);
	printf(" runtime: %llu expiries, %llu injected, %llu halts\n",
	       (unsigned long long)vs.timer_fires, (unsigned long long)vs.injected,
	       (unsigned long long)vs.halts);
	ct_vmm_b(o, vmm_b_timer);
	ct_orphan_close(o);
	ct_param_set("fixed_insn_len", "N");
}

static char ct_debugfs_dir[128];

/* The orphan's debugfs directory: the newest orphan-N. */
static void ct_find_debugfs(void)
{
	FILE *f = popen("ls -d /sys/kernel/debug/caretaker/orphan-* | sort -t- -k2 -n | tail -1",
			"r");

	TEST_ASSERT(f && fgets(ct_debugfs_dir, sizeof(ct_debugfs_dir), f), "no orphan in debugfs");
	ct_debugfs_dir[strcspn(ct_debugfs_dir, "\n")] = 0;
	pclose(f);
}

static void vmm_b_unsafe_msr(struct ct_orphan *o)
{
	struct ct_adopter a;
	__u64 done;

	ct_adopter_create(&a, o, CT_FLAW_NONE);
	ct_adopt(&a, o);
	/*
	 * KVM completes the WRMSR, and the RDMSR after it.  The count is
	 * read while the guest cannot move (a guest that ran first once made
	 * this wait for one command more than it gave).
	 */
	done = READ_ONCE(a.beats[0].done);
	ct_adopter_run(&a);
	ct_expect_done(&a.beats[0], done + 1, "the MSR accesses");
	TEST_ASSERT(a.beats[0].cpuid[0] == CT_UNSAFE_MSR_VAL,
		    "SYSENTER_CS reads %#x after ATTACH, the guest wrote %#x",
		    a.beats[0].cpuid[0], CT_UNSAFE_MSR_VAL);
	ct_adopter_pause(&a);
	ct_adopter_free(&a, o);
}

/*
 * The runtime's APIC: a masked timer gives no interrupt, a vector below
 * TPR waits until TPR drops, host IPIs are taken and ignored, and an MSR
 * outside the safe set blocks and is KVM's after ATTACH.
 */
static void test_apic_in_gap(void)
{
	struct kvm_caretaker_vcpu_status vs0, vs1;
	struct ct_orphan *o;
	char path[192];
	__u32 irr;
	int fd, i;

	ct_param_set("fixed_insn_len", "Y");
	o = ct_orphan_make(1, CT_A_APIC);
	ct_find_debugfs();

	ct_gap_command(o, CT_CMD_MASKED_TIMER, "the masked timer");
	TEST_ASSERT(o->beats[0].cpuid[0] == 0 && o->beats[0].cpuid[1] == 0,
		    "masked timer: %u interrupts, TMCCT %u after it expired",
		    o->beats[0].cpuid[0], o->beats[0].cpuid[1]);

	/* One interrupt after TPR drops; two is the test host's doubled delivery. */
	ct_gap_command(o, CT_CMD_TPR, "the TPR test");
	irr = o->beats[0].cpuid[2];
	TEST_ASSERT(o->beats[0].cpuid[0] == 0 && (irr & BIT(CT_IRQ_VECTOR % 32)) &&
		    (o->beats[0].cpuid[1] == 1 || o->beats[0].cpuid[1] == 2),
		    "TPR 0xf0: %u interrupts (IRR word %#x), then %u after TPR 0",
		    o->beats[0].cpuid[0], irr, o->beats[0].cpuid[1]);
	if (o->beats[0].cpuid[1] == 2)
		printf("# apic_in_gap: the self IPI was taken twice%s\n",
		       " (the test host's doubled delivery)");

	/* The host's IPIs: a reschedule-like vector, ten times. */
	vs0 = ct_vcpu_status(o->ct_fd, 0);
	snprintf(path, sizeof(path), "%s/ipi", ct_debugfs_dir);
	for (i = 0; i < 10; i++) {
		fd = open(path, O_WRONLY);
		TEST_ASSERT(fd >= 0 && write(fd, "0xfd", 4) == 4, "write %s: %s", path,
			    strerror(errno));
		close(fd);
		ct_sleep_ms(20);
	}
	ct_sleep_ms(50);
	vs1 = ct_vcpu_status(o->ct_fd, 0);
	ct_expect_status(o->ct_fd, KVM_CARETAKER_STATE_DETACHED, 1);
	ct_expect_beats(o->beats, 1, CT_BEATS_ALIVE, "after the host's IPIs");
	/* IPIs of one vector sent while one is pending merge into it. */
	TEST_ASSERT(vs1.host_interrupts > vs0.host_interrupts,
		    "the runtime took %llu interrupts for 10 host IPIs",
		    (unsigned long long)(vs1.host_interrupts - vs0.host_interrupts));

	/* SYSENTER_CS is not the runtime's: the WRMSR blocks. */
	WRITE_ONCE(o->beats[0].command, CT_CMD_UNSAFE_MSR);
	for (i = 0; ct_status(o->ct_fd).state != KVM_CARETAKER_STATE_BLOCKED; i++) {
		TEST_ASSERT(i < CT_WAIT_MS, "the WRMSR of SYSENTER_CS did not block");
		ct_sleep_ms(1);
	}
	ct_expect_blocked_on(o->ct_fd, SVM_EXIT_MSR, KVM_CARETAKER_EXIT_MSR);
	ct_vmm_b(o, vmm_b_unsafe_msr);
	ct_orphan_close(o);
	ct_param_set("fixed_insn_len", "N");
	printf("# apic_in_gap: masked timer silent; self IPI held by TPR 0xf0,");
	printf(" taken when it dropped;");
	printf(" 10 host IPIs (%llu taken) ignored; SYSENTER_CS WRMSR blocked,",
	       (unsigned long long)(vs1.host_interrupts - vs0.host_interrupts));
	printf(" done by KVM after ATTACH\n");
}

static void test_timer_oneshot(void)
{
	ct_timer_in_gap(CT_TM_ONESHOT, "timer_oneshot");
}

static void test_timer_periodic(void)
{
	ct_timer_in_gap(CT_TM_PERIODIC, "timer_periodic");
}

static void test_timer_tscdeadline(void)
{
	ct_timer_in_gap(CT_TM_TSCDL, "timer_tscdeadline");
}

static void vmm_b_shutdown(struct ct_orphan *o)
{
	struct ct_adopter a;
	struct ct_runner *r = &a.runners[0];

	ct_adopter_create(&a, o, CT_FLAW_NONE);
	ct_adopt(&a, o);
	/* The triple fault the guest made while detached is KVM's now. */
	ct_run_once(r, a.vcpus[0], "the shutdown");
	TEST_ASSERT(r->ret == 0 && r->exit_reason == KVM_EXIT_SHUTDOWN,
		    "expected KVM_EXIT_SHUTDOWN, got %d errno %d exit %u",
		    r->ret, r->err, r->exit_reason);
	ct_adopter_free(&a, o);
}

/*
 * Cancel: while its VMM lives, the source VM adopts its own orphan back;
 * the guest goes on under KVM, the CPU comes back, the memslots thaw.
 */
static void test_cancel(void)
{
	struct kvm_caretaker_vcpu_status vs;
	struct ct_guest g;
	__u64 c0, exits;
	int ct_fd, ms;

	ct_guest_create(&g, 1);
	ct_guest_run(&g);
	ct_expect_beats(g.beats, 1, CT_BEATS_ALIVE, "under the VMM");
	ct_fd = ct_prepare(g.vm, ct_cpus, 1);
	TEST_ASSERT(ct_fd >= 0, "PREPARE: %s", strerror(errno));
	ct_guest_detach(&g, ct_fd);
	ct_expect_status(ct_fd, KVM_CARETAKER_STATE_DETACHED, 1);
	c0 = READ_ONCE(g.beats[0].counter);
	exits = vcpu_get_stat(g.vcpus[0], exits);
	ct_sleep_ms(CT_SHORT_GAP_MS);
	TEST_ASSERT(READ_ONCE(g.beats[0].counter) > c0 + CT_BEATS_ALIVE,
		    "the guest did not run detached");
	/* The runtime runs it, not KVM: the source vCPU makes no exit. */
	TEST_ASSERT_EQ(vcpu_get_stat(g.vcpus[0], exits), exits);

	TEST_ASSERT(!ct_attach(g.vm, ct_fd), "ATTACH into the source VM: %s",
		    strerror(errno));
	ct_expect_status(ct_fd, KVM_CARETAKER_STATE_ATTACHED, 1);
	vs = ct_vcpu_status(ct_fd, 0);
	TEST_ASSERT(vs.state == KVM_CARETAKER_VCPU_STOPPED, "vCPU state %u", vs.state);
	ct_guest_run(&g);
	ct_expect_beats(g.beats, 1, CT_BEATS_ALIVE, "back under its own VMM");
	ms = ct_wait_cpu_online(ct_cpus[0]);
	TEST_ASSERT(!ct_add_scratch_slot(g.vm), "memslot change after the cancel: %s",
		    strerror(errno));
	ct_guest_pause(&g);
	close(ct_fd);
	kvm_vm_free(g.vm);
	printf("# cancel: detached %d ms, adopted back by its own VM; CPU %u online %d ms later\n",
	       CT_SHORT_GAP_MS, ct_cpus[0], ms);
}

/* A guest that triple-faults while detached does not take the host down. */
static void test_triple_fault(void)
{
	struct ct_orphan *o = ct_orphan_make(1, 0);
	struct ct_gap g;
	int ms;

	ct_watch(o, CT_SHORT_GAP_MS, &g);
	ms = ct_block_on(o, CT_CMD_SHUTDOWN);
	ct_expect_blocked_on(o->ct_fd, SVM_EXIT_SHUTDOWN, KVM_CARETAKER_EXIT_SHUTDOWN);
	ct_vmm_b(o, vmm_b_shutdown);
	ct_orphan_close(o);
	printf("# triple_fault: blocked %d ms after the fault; KVM_EXIT_SHUTDOWN after ATTACH\n",
	       ms);
}

/* The debugfs directory of the only orphan there is. */
static void ct_orphan_debugfs(char *path, size_t size, const char *file)
{
	const char *root = "/sys/kernel/debug/caretaker";
	struct dirent *d;
	DIR *dir;
	int n = 0;

	dir = opendir(root);
	TEST_ASSERT(dir, "opendir %s: %s", root, strerror(errno));
	while ((d = readdir(dir)))
		if (!strncmp(d->d_name, "orphan-", 7)) {
			snprintf(path, size, "%s/%s/%s", root, d->d_name, file);
			n++;
		}
	closedir(dir);
	TEST_ASSERT(n == 1, "%d orphans in %s, expected 1", n, root);
}

/*
 * NMIs sent to a parked CPU while the guest runs: each makes one exit,
 * the runtime's own handler takes it, and the guest goes on.
 */
static void test_nmi_in_gap(void)
{
	struct ct_orphan *o = ct_orphan_make(1, 0);
	struct kvm_caretaker_vcpu_status before, after;
	char path[PATH_MAX], text[1024], want[64];
	__u64 nmi_exits;
	ssize_t n;
	struct ct_gap g;
	int fd;

	ct_watch(o, CT_SHORT_GAP_MS, &g);
	before = ct_vcpu_status(o->ct_fd, 0);
	ct_orphan_debugfs(path, sizeof(path), "nmi");
	fd = open(path, O_WRONLY);
	TEST_ASSERT(fd >= 0, "open %s: %s", path, strerror(errno));
	TEST_ASSERT(write(fd, "20", 2) == 2, "write %s: %s", path, strerror(errno));
	close(fd);
	after = ct_vcpu_status(o->ct_fd, 0);
	nmi_exits = after.exits_by_kind[KVM_CARETAKER_EXIT_NMI];
	TEST_ASSERT(after.nmis >= before.nmis + 20 &&
		    nmi_exits > before.exits_by_kind[KVM_CARETAKER_EXIT_NMI] &&
		    after.state == KVM_CARETAKER_VCPU_RUNNING,
		    "after 20 NMIs: nmis %llu -> %llu, NMI exits %llu -> %llu, state %u",
		    (unsigned long long)before.nmis, (unsigned long long)after.nmis,
		    (unsigned long long)before.exits_by_kind[KVM_CARETAKER_EXIT_NMI],
		    (unsigned long long)nmi_exits, after.state);
	ct_expect_beats(o->beats, 1, CT_BEATS_ALIVE, "after the NMIs");
	ct_expect_status(o->ct_fd, KVM_CARETAKER_STATE_DETACHED, 1);
	ct_vmm_b(o, vmm_b_heartbeat);
	/* Adopted: the telemetry stays readable, final. */
	after = ct_vcpu_status(o->ct_fd, 0);
	TEST_ASSERT(after.state == KVM_CARETAKER_VCPU_STOPPED && after.detached_ns,
		    "after ATTACH: state %u detached_ns %llu", after.state,
		    (unsigned long long)after.detached_ns);
	/* ... and in debugfs, for as long as the fd exists. */
	ct_orphan_debugfs(path, sizeof(path), "status");
	fd = open(path, O_RDONLY);
	TEST_ASSERT(fd >= 0, "open %s: %s", path, strerror(errno));
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	TEST_ASSERT(n > 0, "read %s", path);
	text[n] = 0;
	snprintf(want, sizeof(want), "state %u vcpus 1", KVM_CARETAKER_STATE_ATTACHED);
	TEST_ASSERT(strstr(text, want) && strstr(text, "vcpu 0 cpu"),
		    "%s after ATTACH: '%s'", path, text);
	ct_orphan_close(o);
	printf("# nmi_in_gap: %llu NMIs taken by the runtime, %llu NMI exits, ",
	       (unsigned long long)(after.nmis - before.nmis), (unsigned long long)nmi_exits);
	printf("guest went on; detached %llu ms\n",
	       (unsigned long long)after.detached_ns / 1000000);
}

/* Is @vector's bit set in the 256-bit register at @reg of @lapic? */
static bool ct_lapic_bit(const struct kvm_lapic_state *lapic, __u32 reg, __u8 vector)
{
	__u32 word;

	memcpy(&word, &lapic->regs[reg + (vector / 32) * 0x10], sizeof(word));
	return word & (1u << (vector % 32));
}

/*
 * ct_wait_irqs() for VMM B's guest; on a timeout, say where the interrupt
 * went: is the vCPU still in KVM_RUN, does the guest still beat, is the
 * vector in IRR or ISR, what is TPR, is the eventfd's count still there.
 */
static void ct_wait_irqs_diag(struct ct_adopter *a, int eventfd, __u64 n)
{
	__u64 start = ct_now_ns(), beats = READ_ONCE(a->beats[0].counter);
	struct pollfd p = { .fd = eventfd, .events = POLLIN };
	struct ct_runner *r = &a->runners[0];
	struct kvm_vcpu_events ev;
	struct kvm_lapic_state lapic;
	struct kvm_regs regs;
	typeof(a->vcpus[0]->run->internal) *ir;
	bool done;
	__u32 tpr;

	while (READ_ONCE(a->beats[0].irqs) < n) {
		if (ct_now_ns() - start < CT_WAIT_MS * 1000000ULL) {
			ct_sleep_ms(1);
			continue;
		}
		done = __atomic_load_n(&r->done, __ATOMIC_ACQUIRE);
		beats = READ_ONCE(a->beats[0].counter) - beats;
		ct_runner_stop(r);
		vcpu_ioctl(a->vcpus[0], KVM_GET_LAPIC, &lapic);
		vcpu_events_get(a->vcpus[0], &ev);
		vcpu_regs_get(a->vcpus[0], &regs);
		memcpy(&tpr, &lapic.regs[APIC_TASKPRI], sizeof(tpr));
		ir = &a->vcpus[0]->run->internal;
		printf("# KVM_RUN %s (%d errno %d exit %u, internal %u ndata %u:",
		       done ? "returned" : "running", r->ret, r->err, r->exit_reason,
		       ir->suberror, ir->ndata);
		printf(" %llx %llx %llx %llx %llx)\n", (unsigned long long)ir->data[0],
		       (unsigned long long)ir->data[1], (unsigned long long)ir->data[2],
		       (unsigned long long)ir->data[3], (unsigned long long)ir->data[4]);
		printf("# RIP %#llx RFLAGS %#llx, +%llu beats, vector %#x IRR %d ISR %d,",
		       (unsigned long long)regs.rip, (unsigned long long)regs.rflags,
		       (unsigned long long)beats, CT_IRQ_VECTOR,
		       ct_lapic_bit(&lapic, APIC_IRR, CT_IRQ_VECTOR),
		       ct_lapic_bit(&lapic, APIC_ISR, CT_IRQ_VECTOR));
		printf(" TPR %#x, shadow %u, injected irq %u nmi %u, eventfd %s\n", tpr,
		       ev.interrupt.shadow, ev.interrupt.injected, ev.nmi.injected,
		       poll(&p, 1, 0) == 1 ? "readable" : "empty");
		TEST_FAIL("%llu interrupts under VMM B after %d ms, expected %llu (state above)",
			  (unsigned long long)READ_ONCE(a->beats[0].irqs), CT_WAIT_MS,
			  (unsigned long long)n);
	}
}

/*
 * VMM B: the adopted guest has taken the one interrupt of VMM A only.
 * Its irqfd on the same eventfd finds the gap's signals pending: one
 * interrupt (edge), at once.
 */
static void vmm_b_irqfd(struct ct_orphan *o)
{
	struct ct_adopter a;
	__u64 start, irqs;

	ct_adopter_create(&a, o, CT_FLAW_NONE);
	ct_adopt(&a, o);
	ct_expect_same_state(a.vcpus[0], &o->h.state[0]);
	TEST_ASSERT_EQ(READ_ONCE(a.beats[0].irqs), 1);
	/*
	 * After ATTACH: the interrupt goes into the adopted local APIC, with
	 * the vCPU already running.  Pending at the adopted vCPU's very first
	 * VMRUN instead, it went wrong twice in about sixty runs on this test
	 * host, both times on the guest's first exit after KVM injected it:
	 * that exit reported the delivered interrupt in EXITINTINFO, so KVM
	 * injected it a second time (x2APIC EOI) or refused to emulate the
	 * xAPIC EOI during "event delivery" (see guest_irq_handler()).  The
	 * adopted vCPU state was right both times.
	 */
	ct_adopter_run(&a);
	ct_expect_beats(a.beats, 1, CT_BEATS_ALIVE, "under VMM B, before KVM_IRQFD");
	start = ct_now_ns();
	ct_route_irqfd(a.vm, o->h.vcpu_ids[0], o->eventfd);
	ct_wait_irqs_diag(&a, o->eventfd, 2);
	o->fig->irq_ns = ct_now_ns() - start;
	ct_sleep_ms(CT_IRQ_SETTLE_MS);
	irqs = READ_ONCE(a.beats[0].irqs);
	/*
	 * One edge.  This test host now and then delivers an injected
	 * interrupt twice, under KVM as under the runtime (timer_* count
	 * them as "doubled" under VMM A too): two is that, and said so.
	 */
	TEST_ASSERT(irqs == 2 || irqs == 3,
		    "%d signals in the gap made %llu interrupts under VMM B, expected 1",
		    CT_IRQ_SIGNALS, (unsigned long long)irqs - 1);
	if (irqs == 3)
		printf("# irqfd_in_gap: the interrupt was taken twice%s\n",
		       " (the test host's doubled delivery)");
	ct_expect_running_under_b(&a, o);
	o->fig->irqs = READ_ONCE(a.beats[0].irqs);
	ct_adopter_pause(&a);
	ct_adopter_free(&a, o);
}

/*
 * Signals sent through an irqfd while the guest has no VMM: DETACH left
 * the eventfd's count alone, the guest takes no interrupt detached, and
 * the adopting VM's KVM_IRQFD on the same eventfd delivers them.
 */
static void test_irqfd_in_gap(void)
{
	struct ct_orphan *o = ct_orphan_make(1, CT_A_IRQFD);
	struct pollfd p;
	struct ct_gap g;
	__u64 irqs;
	int i;

	TEST_ASSERT(o->eventfd >= 0, "no eventfd in the handover");
	p = (struct pollfd){ .fd = o->eventfd, .events = POLLIN };
	TEST_ASSERT(poll(&p, 1, 0) == 0, "the eventfd has a count before the gap's signals");
	TEST_ASSERT_EQ(READ_ONCE(o->beats[0].irqs), 1);
	for (i = 0; i < CT_IRQ_SIGNALS; i++)
		TEST_ASSERT(!eventfd_write(o->eventfd, 1), "eventfd_write: %s",
			    strerror(errno));
	ct_watch(o, CT_IRQ_SETTLE_MS, &g);
	irqs = READ_ONCE(o->beats[0].irqs);
	TEST_ASSERT(irqs == 1, "the guest took %llu interrupts while detached",
		    (unsigned long long)irqs - 1);
	ct_expect_status(o->ct_fd, KVM_CARETAKER_STATE_DETACHED, 1);
	TEST_ASSERT(poll(&p, 1, 0) == 1 && (p.revents & POLLIN),
		    "the gap's signals are not pending in the eventfd");
	ct_vmm_b(o, vmm_b_irqfd);
	printf("# irqfd_in_gap: 1 interrupt under VMM A; %d signals while detached, none taken",
	       CT_IRQ_SIGNALS);
	printf(" (+%llu beats in %llu ms); under VMM B 1 interrupt %llu us after KVM_IRQFD,",
	       (unsigned long long)g.beats[0], (unsigned long long)g.ns / 1000000,
	       (unsigned long long)o->fig->irq_ns / 1000);
	printf(" %llu in all, +%llu beats in %llu ms\n", (unsigned long long)o->fig->irqs,
	       (unsigned long long)o->fig->beats, (unsigned long long)o->fig->ns / 1000000);
	ct_orphan_close(o);
}

/* Suspend would power the parked CPUs off: refused while any is parked. */
static void test_suspend_refused(void)
{
	struct ct_guest g;
	char states[128] = "";
	int ct_fd, fd, r;
	ssize_t n;

	fd = open("/sys/power/state", O_RDONLY);
	TEST_ASSERT(fd >= 0, "open /sys/power/state: %s (CONFIG_SUSPEND?)", strerror(errno));
	n = read(fd, states, sizeof(states) - 1);
	close(fd);
	TEST_ASSERT(n > 0 && strstr(states, "freeze"), "no freeze in /sys/power/state: '%s'",
		    states);

	ct_guest_create(&g, 1);
	ct_guest_run(&g);
	ct_fd = ct_prepare(g.vm, ct_cpus, 1);
	TEST_ASSERT(ct_fd >= 0, "PREPARE: %s", strerror(errno));
	fd = open("/sys/power/state", O_WRONLY);
	TEST_ASSERT(fd >= 0, "open /sys/power/state: %s", strerror(errno));
	r = write(fd, "freeze", 6);
	TEST_ASSERT(r == -1 && errno == EBUSY,
		    "suspend with a CPU parked: %d errno %d, expected EBUSY", r, errno);
	close(fd);
	ct_expect_beats(g.beats, 1, CT_BEATS_ALIVE, "after the refused suspend");
	close(ct_fd);
	ct_wait_cpu_online(ct_cpus[0]);
	ct_guest_pause(&g);
	kvm_vm_free(g.vm);
	printf("# suspend_refused: freeze refused with EBUSY while CPU %u was parked\n",
	       ct_cpus[0]);
}

#define CT_SMT_CONTROL	"/sys/devices/system/cpu/smt/control"

/* write() @val to sysfs @path; returns 0 or -errno. */
static int ct_sysfs_write(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY), r, err;

	TEST_ASSERT(fd >= 0, "open %s: %s", path, strerror(errno));
	r = write(fd, val, strlen(val));
	err = errno;
	close(fd);
	return r == (int)strlen(val) ? 0 : -err;
}

/* The first online CPU that is not the first thread of its core, or -1. */
static int ct_second_thread(void)
{
	char path[96];
	unsigned int first;
	int cpu, n;
	FILE *f;

	for (cpu = 1; cpu < 64; cpu++) {
		snprintf(path, sizeof(path),
			 "/sys/devices/system/cpu/cpu%d/topology/thread_siblings_list", cpu);
		f = fopen(path, "r");
		if (!f)
			continue;
		n = fscanf(f, "%u", &first);
		fclose(f);
		if (n == 1 && first != (unsigned int)cpu && ct_cpu_online(cpu) == 1)
			return cpu;
	}
	return -1;
}

/*
 * "smt/control" set to "on" brings every offline thread up through
 * _cpu_up(), the path that sysfs online takes: a parked thread must be
 * refused there too, both while only prepared and while its guest runs
 * detached on it.  Needs a host with SMT (check.sh boots one for this).
 */
static void test_smt_refused(void)
{
	char ctl[32] = "";
	struct ct_guest g;
	int ct_fd, r, cpu;
	__u32 c;
	FILE *f;

	f = fopen(CT_SMT_CONTROL, "r");
	if (f) {
		TEST_ASSERT(fscanf(f, "%31s", ctl) == 1, "read " CT_SMT_CONTROL);
		fclose(f);
	}
	cpu = ct_second_thread();
	if (strcmp(ctl, "on") || cpu < 0) {
		printf("# smt_refused: needs SMT (smt/control '%s', no second thread online)\n",
		       ctl);
		exit(KSFT_SKIP);
	}
	c = cpu;
	ct_guest_create(&g, 1);
	ct_guest_run(&g);
	ct_fd = ct_prepare(g.vm, &c, 1);
	TEST_ASSERT(ct_fd >= 0, "PREPARE on CPU %u: %s", c, strerror(errno));
	/* Every other second thread goes; the parked one is offline already. */
	r = ct_sysfs_write(CT_SMT_CONTROL, "off");
	TEST_ASSERT(!r, "smt/control=off: %s", strerror(-r));
	r = ct_sysfs_write(CT_SMT_CONTROL, "on");
	TEST_ASSERT(r == -EBUSY, "smt/control=on with CPU %u parked: %d, expected -EBUSY",
		    c, r);
	ct_expect_cpu_parked(c);
	ct_expect_beats(g.beats, 1, CT_BEATS_ALIVE, "after the refused smt/control=on");

	ct_guest_detach(&g, ct_fd);
	r = ct_sysfs_write(CT_SMT_CONTROL, "off");
	TEST_ASSERT(!r, "smt/control=off: %s", strerror(-r));
	r = ct_sysfs_write(CT_SMT_CONTROL, "on");
	TEST_ASSERT(r == -EBUSY, "smt/control=on with CPU %u running the orphan: %d", c, r);
	ct_expect_cpu_parked(c);
	ct_expect_status(ct_fd, KVM_CARETAKER_STATE_DETACHED, 1);
	ct_expect_beats(g.beats, 1, CT_BEATS_ALIVE, "detached, after smt/control=on");

	TEST_ASSERT(!ct_attach(g.vm, ct_fd), "ATTACH into the source VM: %s", strerror(errno));
	ct_guest_run(&g);
	ct_expect_beats(g.beats, 1, CT_BEATS_ALIVE, "back under its own VMM");
	ct_wait_cpu_online(c);
	ct_guest_pause(&g);
	close(ct_fd);
	kvm_vm_free(g.vm);
	/* The threads that "on" did not reach before the refusal. */
	r = ct_sysfs_write(CT_SMT_CONTROL, "off");
	TEST_ASSERT(!r, "smt/control=off: %s", strerror(-r));
	r = ct_sysfs_write(CT_SMT_CONTROL, "on");
	TEST_ASSERT(!r, "smt/control=on with nothing parked: %s", strerror(-r));
	TEST_ASSERT_EQ(ct_cpu_online(c), 1);
	printf("# smt_refused: smt/control=on refused with EBUSY while CPU %u was parked,", c);
	printf(" prepared and detached; accepted after\n");
}

static void vmm_b_two_vcpus(struct ct_orphan *o)
{
	struct ct_adopter a;
	__u32 i;

	ct_adopter_create(&a, o, CT_FLAW_NONE);
	/* Prepared: ATTACH loads only what the guest may have changed. */
	ct_adopt_as(&a, o, true);
	for (i = 0; i < 2; i++)
		ct_expect_same_state(a.vcpus[i], &o->h.state[i]);
	ct_adopter_run(&a);
	ct_expect_running_under_b(&a, o);
	ct_adopter_pause(&a);
	ct_adopter_free(&a, o);
}

static void test_two_vcpus(void)
{
	/*
	 * VMM A dies by SIGKILL, not by exit(), and vCPU 1 is not in KVM_RUN
	 * at DETACH: DETACH hands it over, vCPU 0 hands itself over.
	 */
	struct ct_orphan *o = ct_orphan_make(2, CT_A_LINGER | CT_A_LAST_IDLE);
	struct ct_gap g;

	ct_watch(o, CT_GAP_MS, &g);
	ct_expect_status(o->ct_fd, KVM_CARETAKER_STATE_DETACHED, 2);
	ct_vmm_b(o, vmm_b_two_vcpus);
	ct_print_gap("two_vcpus", o, &g,
		     "; VMM A SIGKILLed; adopted after ATTACH_PREPARE, both went on under VMM B");
	ct_orphan_close(o);
}

static void test_close_without_attach(void)
{
	struct ct_orphan *o = ct_orphan_make(1, 0);
	struct ct_beat *beat;
	struct ct_guest g2;
	struct ct_gap g;
	int ms, ct_fd;

	ct_watch(o, CT_SHORT_GAP_MS, &g);
	/* A view of the guest's memory that outlives the orphan. */
	beat = ct_map_beats(o);
	ms = ct_orphan_close(o);
	ct_expect_still(beat, "after the last caretaker fd was closed");

	/* The CPU is free for the next one. */
	ct_guest_create(&g2, 1);
	ct_guest_run(&g2);
	ct_expect_beats(g2.beats, 1, CT_BEATS_ALIVE, "in a new VM");
	ct_fd = ct_prepare(g2.vm, ct_cpus, 1);
	TEST_ASSERT(ct_fd >= 0, "PREPARE of a new VM on CPU %u: %s", ct_cpus[0],
		    strerror(errno));
	ct_expect_cpu_parked(ct_cpus[0]);
	close(ct_fd);
	ct_wait_cpu_online(ct_cpus[0]);
	ct_guest_pause(&g2);
	kvm_vm_free(g2.vm);
	printf("# close_without_attach: +%llu beats in %llu ms detached; ",
	       (unsigned long long)g.beats[0], (unsigned long long)g.ns / 1000000);
	printf("CPU %u online %d ms after the close; PREPAREd again\n", ct_cpus[0], ms);
}

static void test_undo_prepare(void)
{
	struct ct_guest g;
	int ct_fd, r, ms;

	ct_guest_create(&g, 1);
	ct_guest_run(&g);
	ct_expect_beats(g.beats, 1, CT_BEATS_ALIVE, "under the VMM");
	ct_fd = ct_prepare(g.vm, ct_cpus, 1);
	TEST_ASSERT(ct_fd >= 0, "PREPARE: %s", strerror(errno));
	ct_expect_status(ct_fd, KVM_CARETAKER_STATE_PREPARED, 1);
	ct_expect_cpu_parked(ct_cpus[0]);
	r = ct_add_scratch_slot(g.vm);
	TEST_ASSERT(r == -1 && errno == EBUSY,
		    "memslot change after PREPARE: %d errno %d, expected EBUSY", r, errno);

	TEST_ASSERT(!close(ct_fd), "close the caretaker fd");
	ms = ct_wait_cpu_online(ct_cpus[0]);
	TEST_ASSERT(!ct_add_scratch_slot(g.vm), "memslot change after the undo: %s",
		    strerror(errno));
	ct_expect_beats(g.beats, 1, CT_BEATS_ALIVE, "after the undo");

	/* Undone, not broken: it can be prepared again. */
	ct_fd = ct_prepare(g.vm, ct_cpus, 1);
	TEST_ASSERT(ct_fd >= 0, "PREPARE after the undo: %s", strerror(errno));
	ct_expect_cpu_parked(ct_cpus[0]);
	close(ct_fd);
	ct_wait_cpu_online(ct_cpus[0]);
	ct_guest_pause(&g);
	kvm_vm_free(g.vm);
	printf("# undo_prepare: CPU %u online %d ms after the close; memslots writable again\n",
	       ct_cpus[0], ms);
}

/*
 * Nothing may take a page away from a guest whose memory is pinned for
 * the runtime: truncation, hole punching and MADV_REMOVE on its memfd
 * fail with EPERM from PREPARE on, and work again once it is undone.
 */
static int ct_take_pages(struct ct_guest *g, int how)
{
	struct ct_slot *sl = &g->slots[0];
	int fd = g->memfds[0];
	void *p;
	int r;

	switch (how) {
	case 0:
		return ftruncate(fd, sl->offset + sl->size - getpagesize());
	case 1:
		return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				 sl->offset + sl->size - getpagesize(), getpagesize());
	default:
		p = mmap(NULL, getpagesize(), PROT_READ | PROT_WRITE, MAP_SHARED, fd,
			 sl->offset + sl->size - getpagesize());
		TEST_ASSERT(p != MAP_FAILED, "mmap the memfd");
		r = madvise(p, getpagesize(), MADV_REMOVE);
		munmap(p, getpagesize());
		return r;
	}
}

static void test_memfd_frozen(void)
{
	static const char * const what[] = { "ftruncate", "fallocate(PUNCH_HOLE)",
					     "madvise(MADV_REMOVE)" };
	struct ct_guest g;
	int ct_fd, how, r;

	ct_guest_create(&g, 1);
	ct_guest_run(&g);
	ct_fd = ct_prepare(g.vm, ct_cpus, 1);
	TEST_ASSERT(ct_fd >= 0, "PREPARE: %s", strerror(errno));
	for (how = 0; how < 3; how++) {
		r = ct_take_pages(&g, how);
		TEST_ASSERT(r == -1 && errno == EPERM,
			    "%s on a pinned memfd: %d errno %d, expected EPERM",
			    what[how], r, errno);
	}
	ct_expect_beats(g.beats, 1, CT_BEATS_ALIVE, "after the refusals");
	close(ct_fd);
	ct_wait_cpu_online(ct_cpus[0]);
	ct_guest_pause(&g);
	/* Undone: the memfd is the VMM's to change again (last page only). */
	for (how = 2; how >= 0; how--)
		TEST_ASSERT(!ct_take_pages(&g, how), "%s after the undo: %s",
			    what[how], strerror(errno));
	kvm_vm_free(g.vm);
	printf("# memfd_frozen: truncate, hole punch and MADV_REMOVE refused while pinned\n");
}

static void vmm_b_mismatch(struct ct_orphan *o)
{
	static const enum ct_flaw flaws[] = {
		CT_FLAW_EXTRA_VCPU, CT_FLAW_VCPU_ID, CT_FLAW_CPUID, CT_FLAW_MEMFD,
	};
	struct ct_adopter a;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(flaws); i++) {
		ct_adopter_create(&a, o, flaws[i]);
		EXPECT_REFUSED(ct_attach(a.vm, o->ct_fd), EINVAL,
			       ct_flaw_reasons[flaws[i]]);
		ct_adopter_free(&a, o);
		/* Refused, the orphan is as it was. */
		ct_expect_status(o->ct_fd, KVM_CARETAKER_STATE_DETACHED, 1);
		ct_expect_beats(o->beats, 1, CT_BEATS_ALIVE, "after a refused ATTACH");
		ct_expect_cpu_parked(ct_cpus[0]);
	}
	ct_adopter_create(&a, o, CT_FLAW_NONE);
	ct_adopt(&a, o);
	ct_adopter_run(&a);
	ct_expect_running_under_b(&a, o);
	ct_adopter_pause(&a);
	ct_adopter_free(&a, o);
}

static void test_attach_mismatch(void)
{
	struct ct_orphan *o = ct_orphan_make(1, 0);
	struct ct_gap g;

	ct_watch(o, CT_SHORT_GAP_MS, &g);
	ct_vmm_b(o, vmm_b_mismatch);
	ct_print_gap("attach_mismatch", o, &g,
		     "; extra vCPU, vCPU ids, CPUID, memfd refused with EINVAL, then adopted");
	ct_orphan_close(o);
}

static void vmm_b_adopt_twice(struct ct_orphan *o)
{
	struct ct_adopter a, b;

	ct_adopter_create(&a, o, CT_FLAW_NONE);
	ct_adopt(&a, o);
	ct_adopter_run(&a);
	/* A perfect match, but the orphan has a VMM again. */
	ct_adopter_create(&b, o, CT_FLAW_NONE);
	EXPECT_REFUSED(ct_attach(b.vm, o->ct_fd), EBUSY, "the orphan is not detached");
	ct_adopter_free(&b, o);
	ct_expect_status(o->ct_fd, KVM_CARETAKER_STATE_ATTACHED, 1);
	ct_expect_running_under_b(&a, o);
	ct_adopter_pause(&a);
	ct_adopter_free(&a, o);
}

/*
 * A vCPU created after PREPARE has no parked CPU: DETACH refuses with
 * EBUSY before it changes anything.  The guest runs on under its VMM (no
 * vCPU was stopped or held), and the fd stays PREPARED.
 */
static void test_detach_vcpu_added(void)
{
	struct kvm_vcpu *extra;
	struct ct_guest g;
	int ct_fd;

	ct_guest_create(&g, 1);
	ct_guest_run(&g);
	ct_expect_beats(g.beats, 1, CT_BEATS_ALIVE, "before PREPARE");
	ct_fd = ct_prepare(g.vm, ct_cpus, 1);
	TEST_ASSERT(ct_fd >= 0, "PREPARE: %s", strerror(errno));
	extra = vm_vcpu_add(g.vm, 1, guest_heartbeat);
	EXPECT_REFUSED(ct_detach(ct_fd), EBUSY, "the VM's vCPUs changed since PREPARE");
	ct_expect_status(ct_fd, KVM_CARETAKER_STATE_PREPARED, 1);
	/* Still under VMM A: its KVM_RUN goes on, its vCPU takes ioctls. */
	ct_expect_beats(g.beats, 1, CT_BEATS_ALIVE, "after the refused DETACH");
	TEST_ASSERT(g.runners[0].active && !__atomic_load_n(&g.runners[0].done, __ATOMIC_ACQUIRE),
		    "KVM_RUN of vCPU0 ended at the refused DETACH");
	vcpu_regs_get(extra, &(struct kvm_regs){});
	close(ct_fd);
	ct_wait_cpu_online(ct_cpus[0]);
	ct_guest_pause(&g);
	kvm_vm_free(g.vm);
	printf("# detach_vcpu_added: DETACH refused with EBUSY, the guest ran on under its VMM\n");
}

static void test_double_detach(void)
{
	/* VMM A checks the second DETACH. */
	struct ct_orphan *o = ct_orphan_make(1, CT_A_DETACH_TWICE);
	struct ct_gap g;

	ct_watch(o, CT_SHORT_GAP_MS, &g);
	ct_vmm_b(o, vmm_b_adopt_twice);
	ct_print_gap("double_detach", o, &g,
		     "; second DETACH and second ATTACH refused with EBUSY");
	ct_orphan_close(o);
}

/*
 * ATTACH_PREPARE in a VM whose VMM then goes away, the guest still
 * detached: that VM is let go of, its vCPUs never run the guest, and a
 * new VMM prepares its own and adopts.  The guest wrote KERNEL_GS_BASE
 * while detached, which needs no exit: ATTACH must load it even though
 * the preload had loaded the DETACH-time value.
 */
static void vmm_b_prepared(struct ct_orphan *o)
{
	struct ct_vcpu_state want = o->h.state[0];
	struct ct_adopter p, a;
	struct kvm_regs regs;
	__u32 i;

	ct_adopter_create(&p, o, CT_FLAW_NONE);
	ct_prefault(&p, o);
	ct_prepare_adoption(&p, o);
	EXPECT_REFUSED(ct_attach_prepare(p.vm, o->ct_fd), EBUSY, "prepared already");
	ct_expect_beats(o->beats, 1, CT_BEATS_ALIVE, "after ATTACH_PREPARE");
	ct_expect_cpu_parked(ct_cpus[0]);
	ct_gap_command(o, CT_CMD_KERNEL_GS, "WRMSR of KERNEL_GS_BASE");

	ct_adopter_create(&a, o, CT_FLAW_NONE);
	ct_adopt_as(&a, o, true);
	/* The VM prepared first stays held: its copy of the guest is stale. */
	vcpu_regs_get(p.vcpus[0], &regs);
	ct_expect_vcpu_held(&p.runners[0], p.vcpus[0], &regs, "in the VM let go of");
	ct_adopter_free(&p, o);

	for (i = 0; i < want.nr_msrs; i++)
		if (want.msrs[i].index == MSR_KERNEL_GS_BASE)
			want.msrs[i].data = CT_KERNEL_GS;
	TEST_ASSERT(vcpu_get_msr(a.vcpus[0], MSR_KERNEL_GS_BASE) == CT_KERNEL_GS,
		    "KERNEL_GS_BASE %#llx after ATTACH, the guest wrote %#llx",
		    (unsigned long long)vcpu_get_msr(a.vcpus[0], MSR_KERNEL_GS_BASE),
		    CT_KERNEL_GS);
	ct_expect_same_state(a.vcpus[0], &want);
	ct_adopter_run(&a);
	ct_expect_running_under_b(&a, o);
	ct_expect_out_under_b(&a, 0);
	ct_adopter_pause(&a);
	ct_adopter_free(&a, o);
}

static void test_attach_prepare(void)
{
	struct ct_orphan *o = ct_orphan_make(1, 0);
	struct ct_gap g;

	ct_watch(o, CT_GAP_MS, &g);
	ct_vmm_b(o, vmm_b_prepared);
	ct_print_gap("attach_prepare", o, &g,
		     "; a prepared VM let go of and refused; adopted after ATTACH_PREPARE with the MSR the guest wrote detached");
	ct_orphan_close(o);
}

static void test_cpu_taken(void)
{
	struct ct_orphan *o = ct_orphan_make(1, 0);
	struct ct_guest g2;
	struct ct_gap g;
	int ct_fd;

	ct_watch(o, CT_SHORT_GAP_MS, &g);
	ct_guest_create(&g2, 1);
	EXPECT_REFUSED(ct_prepare(g2.vm, &ct_cpus[0], 1), EINVAL,
		       "physical CPU is offline");
	/* The same VM on a free CPU: it was the CPU. */
	ct_fd = ct_prepare(g2.vm, &ct_cpus[1], 1);
	TEST_ASSERT(ct_fd >= 0, "PREPARE on CPU %u: %s", ct_cpus[1], strerror(errno));
	ct_expect_cpu_parked(ct_cpus[1]);
	close(ct_fd);
	ct_wait_cpu_online(ct_cpus[1]);
	kvm_vm_free(g2.vm);

	ct_expect_status(o->ct_fd, KVM_CARETAKER_STATE_DETACHED, 1);
	ct_expect_beats(o->beats, 1, CT_BEATS_ALIVE, "after the refused PREPARE");
	ct_print_gap("cpu_taken", o, &g, "; PREPARE of its CPU refused with EINVAL");
	ct_orphan_close(o);
}

/* As `modprobe -r` does, but with the errno. */
static int ct_delete_module(void)
{
	return syscall(__NR_delete_module, "caretaker", O_NONBLOCK);
}

static void ct_expect_module_pinned(const char *by)
{
	/* Its complaint is expected: keep it out of the log. */
	TEST_ASSERT(system("modprobe -r caretaker 2>/dev/null"),
		    "modprobe -r caretaker succeeded with %s", by);
	TEST_ASSERT(ct_delete_module() == -1 && errno == EWOULDBLOCK,
		    "delete_module with %s: errno %d (%s), expected EWOULDBLOCK",
		    by, errno, strerror(errno));
}

static void test_rmmod_refused(void)
{
	struct ct_orphan *o;
	struct ct_guest g;
	int ct_fd, ms;

	ct_guest_create(&g, 1);
	ct_fd = ct_prepare(g.vm, ct_cpus, 1);
	TEST_ASSERT(ct_fd >= 0, "PREPARE: %s", strerror(errno));
	ct_expect_module_pinned("a prepared VM");
	close(ct_fd);
	ct_wait_cpu_online(ct_cpus[0]);
	kvm_vm_free(g.vm);

	o = ct_orphan_make(1, 0);
	ct_expect_module_pinned("an orphan");
	ct_orphan_close(o);

	/* Once the last caretaker fd is gone, so is the pin. */
	for (ms = 0; system("modprobe -r caretaker 2>/dev/null"); ms += 10) {
		TEST_ASSERT(ms < CT_WAIT_MS, "modprobe -r caretaker still fails after %d ms",
			    CT_WAIT_MS);
		ct_sleep_ms(10);
	}
	TEST_ASSERT(!system("modprobe caretaker"), "modprobe caretaker");
	printf("# rmmod_refused: refused with a prepared VM and with an orphan; ");
	printf("unloaded %d ms after the last close\n", ms);
}

/*
 * ---- bench and demo ----
 *
 * What a VMM restart costs the guest, seen from the guest itself.
 * guest_trail() counts iterations into the epoch the host names and keeps
 * per epoch the longest gap between two iterations and a log2 histogram
 * of the gaps, in its own TSC.  Guest TSC minus host TSC must be the same
 * before DETACH and after ATTACH (the vCPUs' KVM_VCPU_TSC_OFFSET, and the
 * guest's TSC read through KVM_GET_MSRS beside the host's, at the same
 * moment), so a gap in guest TSC cycles is a gap in host cycles.  A
 * monitor thread in the holder samples the counter with the host TSC
 * every ~1 ms as a cross-check.
 *
 * A caretaker run: VMM A builds the VM and saves its vCPU (warmup); T
 * with no event (quiet: the noise floor); PREPARE; DETACH with
 * CT_AROUND_MS either side; VMM A hands over and exits; T with no VMM at
 * all (absence); VMM B builds its VM (build); ATTACH with CT_AROUND_MS
 * either side; after.  A classic run: warmup, quiet, then VMM A pauses
 * the vCPU, saves its state and exits, and T later VMM B restores it into
 * a new VM over the same memfds and runs it (absence, until CT_AROUND_MS
 * after the run), after.
 *
 * Output: CT-BENCH lines (key=value) per epoch and per run, and in demo
 * mode CT-DEMO lines (a sample every CT_DEMO_SAMPLE_MS, the events) as
 * they happen; then a table.  scripts/perf-report.py reads the lines.
 */

#define CT_AROUND_MS		200	/* either side of DETACH and ATTACH */
#define CT_GO_LEAD_MS		20	/* VMM B's leader knows its time before the window */
#define CT_MON_US		1000	/* the monitor's sampling period */
#define CT_DEMO_SAMPLE_MS	50
#define CT_PRINT_MS		20
#define CT_RING			256	/* demo samples, monitor to printer */
#define CT_MAX_RUNS		100	/* of each kind */
#define CT_MAX_EVENTS		16

static struct {
	int absence_ms;		/* T */
	int after_ms;
	int runs;		/* of each kind */
	int stage, stages;	/* kexec_bench: this stage, of so many */
	bool demo;
	int live_fd;		/* --live: CT- lines also go here at once */
} ct_opts = { .absence_ms = 5000, .after_ms = 1000, .runs = 5, .live_fd = -1 };

static const char * const ct_epoch_names[CT_NR_EPOCHS] = {
	[CT_EP_WARMUP] = "warmup", [CT_EP_QUIET] = "quiet", [CT_EP_PREPARE] = "prepare",
	[CT_EP_DETACH] = "detach", [CT_EP_EXIT] = "exit", [CT_EP_ABSENCE] = "absence",
	[CT_EP_BUILD] = "build", [CT_EP_ATTACH] = "attach", [CT_EP_AFTER] = "after",
};

enum ct_event {
	CT_EV_PREPARE,
	CT_EV_PAUSE,		/* classic: VMM A stops the vCPU to save it */
	CT_EV_DETACH,
	CT_EV_VMM_EXIT,		/* the holder has reaped VMM A */
	CT_EV_VMM_START,	/* the holder forks VMM B */
	CT_EV_ATTACH,
	CT_EV_RUN,		/* VMM B's first KVM_RUN */
	CT_NR_EVENT_KINDS,
};

static const char * const ct_event_names[CT_NR_EVENT_KINDS] = {
	[CT_EV_PREPARE] = "PREPARE", [CT_EV_PAUSE] = "PAUSE", [CT_EV_DETACH] = "DETACH",
	[CT_EV_VMM_EXIT] = "VMM-EXIT", [CT_EV_VMM_START] = "VMM-START",
	[CT_EV_ATTACH] = "ATTACH", [CT_EV_RUN] = "RUN",
};

/*
 * One run as the host saw it, in host TSC cycles: an anonymous shared
 * mapping of the holder's, inherited by VMM A and VMM B.  Only one of
 * them acts at a time; the holder's threads only read it.
 */
struct ct_run_log {
	bool classic;
	__u32 tsc_khz;			/* VMM A's vCPU's: the host's */
	__u64 t0;			/* the start of the run */
	__u64 epoch_tsc[CT_NR_EPOCHS];	/* when each began; 0: not in this run */
	__u64 end_tsc;			/* VMM B pauses the guest */
	__u32 nr_events;
	struct {
		__u32 what;
		__u64 tsc, end;		/* of the call or step */
	} ev[CT_MAX_EVENTS];
	/* [0]: VMM A's vCPU, last seen before DETACH (or the pause); [1]: VMM B's */
	__u64 tsc_offset[2];		/* KVM_VCPU_TSC_OFFSET */
	__s64 tsc_seen[2];		/* MSR_IA32_TSC minus host TSC, read together */
	__u64 tsc_seen_err[2];		/* ... give or take this */
	__u64 kernel_stall_ns[2];	/* GET_STATUS after DETACH, after ATTACH */
	__u64 exits, blocked_exits;	/* GET_STATUS at the end of the absence */
};

static void ct_epoch(struct ct_run_log *log, struct ct_trail *tr, enum ct_epoch e)
{
	log->epoch_tsc[e] = rdtsc();
	WRITE_ONCE(tr->epoch, e);
}

/* Record an event that began at host TSC @start and ended at @end. */
static void ct_event_at(struct ct_run_log *log, enum ct_event what, __u64 start, __u64 end)
{
	__u32 n = log->nr_events;

	TEST_ASSERT(n < CT_MAX_EVENTS, "too many events");
	log->ev[n].what = what;
	log->ev[n].tsc = start;
	log->ev[n].end = end;
	__atomic_store_n(&log->nr_events, n + 1, __ATOMIC_RELEASE);
}

/* ... that ends now. */
static void ct_event(struct ct_run_log *log, enum ct_event what, __u64 start)
{
	ct_event_at(log, what, start, rdtsc());
}

/*
 * The paused vCPU's TSC offset, and its guest TSC (KVM_GET_MSRS, which
 * KVM computes from the host TSC of that moment) minus the host TSC read
 * around it: the closest of five reads.
 */
static void ct_tsc_read(struct kvm_vcpu *vcpu, struct ct_run_log *log, int side)
{
	__u64 h0, h1, g, best = ~0ULL;
	int i;

	vcpu_device_attr_get(vcpu, KVM_VCPU_TSC_CTRL, KVM_VCPU_TSC_OFFSET,
			     &log->tsc_offset[side]);
	for (i = 0; i < 5; i++) {
		h0 = rdtsc();
		g = vcpu_get_msr(vcpu, MSR_IA32_TSC);
		h1 = rdtsc();
		if (h1 - h0 < best) {
			best = h1 - h0;
			log->tsc_seen[side] = g - (h0 + best / 2);
			log->tsc_seen_err[side] = best / 2 + 1;
		}
	}
}

/* ---- output ---- */

static void ct_write_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len) {
		n = write(fd, buf, len);
		if (n <= 0)
			return;		/* a lost copy must not stop the run */
		buf += n;
		len -= n;
	}
}

/*
 * One line to stdout, and with @live to the live copy too.  write(2), not
 * stdio: the holder's threads print while it forks VMM B.
 */
static __printf(2, 3) void ct_emit(bool live, const char *fmt, ...)
{
	char line[768];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	n = min_t(int, n, sizeof(line) - 2);
	line[n++] = '\n';
	ct_write_all(1, line, n);
	if (live && ct_opts.live_fd >= 0)
		ct_write_all(ct_opts.live_fd, line, n);
}

/* A line of key=value pairs, built up and then emitted whole. */
struct ct_line {
	char buf[1024];
	size_t len;
};

static __printf(2, 3) void ct_add(struct ct_line *l, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(l->buf + l->len, sizeof(l->buf) - l->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		l->len = min(l->len + n, sizeof(l->buf) - 1);
}

static const char *ct_prefix(void)
{
	return ct_opts.demo ? "CT-DEMO" : "CT-BENCH";
}

static double ct_ms(const struct ct_run_log *log, __s64 cycles)
{
	return (double)cycles / log->tsc_khz;
}

/* ---- the holder's monitor: a sampler and a printer thread ---- */

struct ct_mon_epoch {
	__u64 samples;
	__u64 max_still;	/* host cycles the counter was seen standing still */
	__u64 first_tsc, last_tsc, first_count, last_count;
};

struct ct_monitor {
	struct ct_trail *tr;		/* the holder's mapping */
	struct ct_run_log *log;
	const char *kind;
	int run;
	bool stop;
	pthread_t sampler, printer;
	struct ct_mon_epoch ep[CT_NR_EPOCHS];
	struct {
		__u64 tsc, counter;
		__u32 epoch;
	} ring[CT_RING];
	__u32 head;
};

static void *ct_sampler_main(void *arg)
{
	struct ct_monitor *m = arg;
	__u64 now, c, last_c = 0, changed = 0, next_sample = 0, end;
	__u64 every = (__u64)CT_DEMO_SAMPLE_MS * m->log->tsc_khz;
	struct ct_mon_epoch *me;
	__u32 e, h;

	while (!__atomic_load_n(&m->stop, __ATOMIC_ACQUIRE)) {
		now = rdtsc();
		c = READ_ONCE(m->tr->beat.counter);
		e = min_t(__u64, READ_ONCE(m->tr->epoch), CT_NR_EPOCHS - 1);
		end = READ_ONCE(m->log->end_tsc);
		if (end && now > end)
			break;		/* VMM B has paused the guest */
		me = &m->ep[e];
		if (!me->samples) {
			me->first_tsc = now;
			me->first_count = c;
		}
		me->samples++;
		me->last_tsc = now;
		me->last_count = c;
		if (c != last_c || !changed) {
			last_c = c;
			changed = now;
		} else if (now - changed > me->max_still) {
			me->max_still = now - changed;
		}
		if (ct_opts.demo && now >= next_sample) {
			h = m->head;
			m->ring[h % CT_RING].tsc = now;
			m->ring[h % CT_RING].counter = c;
			m->ring[h % CT_RING].epoch = e;
			__atomic_store_n(&m->head, h + 1, __ATOMIC_RELEASE);
			next_sample = now + every;
		}
		usleep(CT_MON_US);
	}
	return NULL;
}

static void ct_print_events(struct ct_monitor *m, __u32 *printed)
{
	const struct ct_run_log *log = m->log;
	__u32 n = __atomic_load_n(&log->nr_events, __ATOMIC_ACQUIRE);

	for (; *printed < n; (*printed)++)
		ct_emit(true, "%s event run=%d kind=%s name=%s t_ms=%.1f dur_ms=%.3f",
			ct_prefix(), m->run, m->kind,
			ct_event_names[log->ev[*printed].what],
			ct_ms(log, log->ev[*printed].tsc - log->t0),
			ct_ms(log, log->ev[*printed].end - log->ev[*printed].tsc));
}

static bool ct_window_epoch(__u32 e)
{
	return e == CT_EP_PREPARE || e == CT_EP_DETACH || e == CT_EP_ATTACH;
}

static void *ct_printer_main(void *arg)
{
	struct ct_monitor *m = arg;
	__u32 printed = 0, tail = 0, head;
	bool stop;

	do {
		stop = __atomic_load_n(&m->stop, __ATOMIC_ACQUIRE);
		/*
		 * Nothing while a window around PREPARE, DETACH or ATTACH is
		 * open: writing to the console takes CPU time, which on this
		 * host is the guest's too, from what the window measures.
		 */
		if (!stop && ct_window_epoch(READ_ONCE(m->tr->epoch))) {
			usleep(CT_PRINT_MS * 1000);
			continue;
		}
		ct_print_events(m, &printed);
		head = __atomic_load_n(&m->head, __ATOMIC_ACQUIRE);
		if (head - tail > CT_RING)
			tail = head - CT_RING;
		for (; tail != head; tail++)
			ct_emit(true,
				"CT-DEMO sample run=%d kind=%s t_ms=%.0f counter=%llu epoch=%s",
				m->run, m->kind,
				ct_ms(m->log, m->ring[tail % CT_RING].tsc - m->log->t0),
				(unsigned long long)m->ring[tail % CT_RING].counter,
				ct_epoch_names[m->ring[tail % CT_RING].epoch]);
		if (!stop)
			usleep(CT_PRINT_MS * 1000);
	} while (!stop);
	return NULL;
}

static void ct_monitor_start(struct ct_monitor *m)
{
	TEST_ASSERT(!pthread_create(&m->sampler, NULL, ct_sampler_main, m) &&
		    !pthread_create(&m->printer, NULL, ct_printer_main, m),
		    "pthread_create");
}

static void ct_monitor_stop(struct ct_monitor *m)
{
	__atomic_store_n(&m->stop, true, __ATOMIC_RELEASE);
	pthread_join(m->sampler, NULL);
	pthread_join(m->printer, NULL);
}

/* ---- the VMMs of a run ---- */

/* VMM A: build, run, save (warmup), quiet; then restart the caretaker's way or the classic. */
static void ct_vmm_a_bench(int sock, void *arg)
{
	struct ct_handover *h = calloc(1, sizeof(*h));
	struct ct_run_log *log = arg;
	struct ct_trail *tr;
	struct ct_guest g;
	int ct_fd = -1;
	__u64 t;

	TEST_ASSERT(h, "calloc");
	__ct_guest_create(&g, 1, guest_trail, CT_TRAIL_PAGES);
	tr = (struct ct_trail *)g.beats;
	log->tsc_khz = ct_tsc_khz(g.vcpus[0]);
	/* The memory first, for the holder's monitor. */
	ct_guest_hand_over(sock, &g, h, -1);
	ct_guest_run(&g);
	ct_expect_beats(g.beats, 1, CT_BEATS_ALIVE, "under VMM A");
	ct_guest_pause(&g);
	ct_save_vcpu(g.vcpus[0], &h->state[0]);
	ct_tsc_read(g.vcpus[0], log, 0);
	ct_guest_run(&g);
	/* The gap of that pause must end in warmup, not in the noise floor. */
	ct_expect_beats(g.beats, 1, CT_BEATS_ALIVE, "after the save");

	ct_epoch(log, tr, CT_EP_QUIET);
	ct_sleep_ms(ct_opts.absence_ms);

	if (log->classic) {
		ct_epoch(log, tr, CT_EP_ABSENCE);
		t = rdtsc();
		ct_guest_pause(&g);
		ct_event(log, CT_EV_PAUSE, t);
		ct_save_vcpu(g.vcpus[0], &h->state[0]);
		ct_tsc_read(g.vcpus[0], log, 0);
		ct_guest_hand_over(sock, &g, h, -1);
		return;
	}

	ct_epoch(log, tr, CT_EP_PREPARE);
	t = rdtsc();
	ct_fd = ct_prepare(g.vm, ct_cpus, 1);
	ct_event(log, CT_EV_PREPARE, t);
	TEST_ASSERT(ct_fd >= 0, "PREPARE: %s", strerror(errno));
	ct_sleep_ms(CT_AROUND_MS);
	ct_epoch(log, tr, CT_EP_DETACH);
	ct_sleep_ms(CT_AROUND_MS);
	t = rdtsc();
	ct_guest_detach(&g, ct_fd);
	ct_event(log, CT_EV_DETACH, t);
	log->kernel_stall_ns[0] = ct_expect_status(ct_fd, KVM_CARETAKER_STATE_DETACHED, 1).stall_ns;
	ct_sleep_ms(CT_AROUND_MS);
	ct_epoch(log, tr, CT_EP_EXIT);
	ct_guest_hand_over(sock, &g, h, ct_fd);
}

/*
 * VMM B, the guest running: the rest of the window (@ms), the after
 * epoch, then pause and read the TSC.
 */
static void ct_bench_after(struct ct_adopter *a, struct ct_run_log *log, struct ct_trail *tr,
			   int ms)
{
	ct_sleep_ms(ms);
	ct_epoch(log, tr, CT_EP_AFTER);
	ct_sleep_ms(ct_opts.after_ms);
	log->end_tsc = rdtsc();
	ct_adopter_pause(a);
	ct_tsc_read(a->vcpus[0], log, 1);
}

static void vmm_b_bench_adopt(struct ct_orphan *o)
{
	struct ct_run_log *log = o->log;
	struct ct_trail *tr;
	struct ct_adopter a;
	int go;

	ct_adopter_create(&a, o, CT_FLAW_NONE);
	tr = (struct ct_trail *)a.beats;
	ct_prefault(&a, o);
	ct_adopter_attach_ready(&a, o->ct_fd, &go);
	/*
	 * The leader is told the time before the window opens and sleeps
	 * until then: waking it is none of this thread's business inside
	 * the window, which holds the ATTACH call and what it causes only.
	 */
	ct_adopter_attach_go(&a, &go, ct_now_ns() + (CT_GO_LEAD_MS + CT_AROUND_MS) * 1000000ULL);
	ct_sleep_ms(CT_GO_LEAD_MS);
	ct_epoch(log, tr, CT_EP_ATTACH);
	/* Look well after the leader's time: not awake with it. */
	ct_sleep_ms(CT_AROUND_MS + CT_GO_LEAD_MS * 2);
	TEST_ASSERT(!ct_adopter_attach_wait(&a), "ATTACH: %s", strerror(errno));
	ct_event_at(log, CT_EV_ATTACH, a.runners[0].attach_tsc, a.runners[0].attach_end_tsc);
	ct_event_at(log, CT_EV_RUN, a.runners[0].attach_end_tsc, a.runners[0].attach_end_tsc);
	log->kernel_stall_ns[1] = ct_expect_status(o->ct_fd, KVM_CARETAKER_STATE_ATTACHED,
						   1).stall_ns;
	ct_bench_after(&a, log, tr, CT_AROUND_MS - CT_GO_LEAD_MS * 2);
	/* Polled after the window: the polls are not the CPU's return. */
	ct_wait_cpu_online(ct_cpus[0]);
	ct_expect_same_state(a.vcpus[0], &o->h.state[0]);
	ct_adopter_free(&a, o);
}

static void vmm_b_bench_restore(struct ct_orphan *o)
{
	struct ct_run_log *log = o->log;
	struct ct_adopter a;
	__u64 t;

	ct_adopter_create(&a, o, CT_FLAW_NONE);
	ct_restore_vcpu(a.vcpus[0], &o->h.state[0]);
	t = rdtsc();
	ct_adopter_run(&a);
	ct_event(log, CT_EV_RUN, t);
	ct_bench_after(&a, log, (struct ct_trail *)a.beats, CT_AROUND_MS);
	ct_adopter_free(&a, o);
}

/* ---- figures ---- */

/* The figures of one run that the summary compares, in ms or %. */
struct ct_run_result {
	double noise, noise_p999;	/* quiet: the longest gap, p99.9 */
	double prepare;			/* the longest gap after PREPARE, outside the stall */
	double detach, attach;		/* the longest gap around each */
	double detach_call, attach_call;	/* the gap across the call itself */
	/* Of those: how long before the call it began, after the call it ended. */
	double detach_lead, detach_tail, attach_lead, attach_tail;
	double restart;			/* the longest gap from DETACH (PAUSE) to after */
	double progress;		/* rate without a VMM, % of the rate in quiet */
	double mon_restart;		/* the monitor's view of restart */
	bool tsc_ok;
};

/* Upper bound of the log2 bucket below which 99.9% of the gaps fall. */
static __u64 ct_p999(const struct ct_epoch_stats *s)
{
	__u64 total = 0, cum = 0;
	int b;

	for (b = 0; b < CT_GAP_BINS; b++)
		total += s->hist[b];
	for (b = 0; b < CT_GAP_BINS && total; b++) {
		cum += s->hist[b];
		if (cum * 1000 >= total * 999)
			return 2ULL << b;
	}
	return 0;
}

/* Where epoch @e ends: where the next one of the run begins. */
static __u64 ct_epoch_end(const struct ct_run_log *log, int e)
{
	for (e++; e < CT_NR_EPOCHS; e++)
		if (log->epoch_tsc[e])
			return log->epoch_tsc[e];
	return log->end_tsc;
}

/* Guest iterations per 10^9 host cycles over epoch @e. */
static double ct_rate(const struct ct_run_log *log, const struct ct_trail *tr, int e)
{
	__u64 len = ct_epoch_end(log, e) - log->epoch_tsc[e];

	return len ? tr->ep[e].iters * 1e9 / len : 0;
}

/*
 * The longest gap of epoch @e that spans event @what, the guest stopped
 * when the call began or stopping before it ended: the handover itself,
 * apart from what else the window holds.  With no such gap among the
 * epoch's longest ones, the shortest of those bounds it.  *@lead and
 * *@tail: how long the gap began before the call and ended after its
 * return (0 for the bound): where the stall is, in the kernel or around.
 */
static __u64 ct_call_gap(const struct ct_run_log *log, const struct ct_trail *tr, int e,
			 enum ct_event what, __u64 *lead, __u64 *tail)
{
	const struct ct_epoch_stats *s = &tr->ep[e];
	__u64 start, end;
	__u32 i;
	int k;

	*lead = 0;
	*tail = 0;
	for (i = 0; i < log->nr_events && log->ev[i].what != what; i++)
		;
	if (i == log->nr_events)
		return 0;
	for (k = 0; k < CT_TOP_GAPS && s->top[k].len; k++) {
		/* Guest TSC to host TSC, as for the epoch line's max_gap_end_ms. */
		end = s->top[k].end - log->tsc_offset[0];
		start = end - s->top[k].len;
		if (start < log->ev[i].end && end > log->ev[i].tsc) {
			*lead = log->ev[i].tsc > start ? log->ev[i].tsc - start : 0;
			*tail = end > log->ev[i].end ? end - log->ev[i].end : 0;
			return s->top[k].len;
		}
	}
	return s->top[CT_TOP_GAPS - 1].len;
}

static void ct_report_run(const struct ct_monitor *m, struct ct_run_result *r)
{
	const struct ct_run_log *log = m->log;
	const struct ct_trail *tr = m->tr;
	const struct ct_epoch_stats *s;
	const struct ct_mon_epoch *me;
	double quiet_rate = ct_rate(log, tr, CT_EP_QUIET);
	struct ct_line l;
	int e, k, first, last;
	__u64 max_gap = 0, mon_max = 0, lead, tail;

	for (e = 0; e < CT_NR_EPOCHS; e++) {
		if (!log->epoch_tsc[e])
			continue;
		s = &tr->ep[e];
		me = &m->ep[e];
		l.len = 0;
		ct_add(&l, "CT-BENCH epoch run=%d kind=%s epoch=%s", m->run, m->kind,
		       ct_epoch_names[e]);
		ct_add(&l, " start_ms=%.1f ms=%.1f", ct_ms(log, log->epoch_tsc[e] - log->t0),
		       ct_ms(log, ct_epoch_end(log, e) - log->epoch_tsc[e]));
		ct_add(&l, " iters=%llu rate=%.0f", (unsigned long long)s->iters,
		       ct_rate(log, tr, e));
		/* Guest TSC to host TSC by the offset, to the run's clock. */
		ct_add(&l, " max_gap_ms=%.3f max_gap_end_ms=%.1f p999_ms=%.4f",
		       ct_ms(log, s->top[0].len),
		       s->top[0].len ? ct_ms(log, s->top[0].end - log->tsc_offset[0] - log->t0) : 0,
		       ct_ms(log, ct_p999(s)));
		/* The longest gaps, each as length@end (the run's clock, as above). */
		for (k = 0; k < CT_TOP_GAPS && s->top[k].len; k++)
			ct_add(&l, "%s%.3f@%.1f", k ? "," : " top_gaps_ms=",
			       ct_ms(log, s->top[k].len),
			       ct_ms(log, s->top[k].end - log->tsc_offset[0] - log->t0));
		ct_add(&l, " mon_max_still_ms=%.3f mon_samples=%llu mon_rate=%.0f",
		       ct_ms(log, me->max_still), (unsigned long long)me->samples,
		       me->last_tsc > me->first_tsc ? (me->last_count - me->first_count) * 1e9 /
						      (me->last_tsc - me->first_tsc) : 0);
		ct_emit(true, "%s", l.buf);
	}

	/* The restart: from DETACH (classic: the pause) until the guest runs under B. */
	first = log->classic ? CT_EP_ABSENCE : CT_EP_DETACH;
	last = log->classic ? CT_EP_ABSENCE : CT_EP_ATTACH;
	for (e = first; e <= last; e++) {
		max_gap = max(max_gap, tr->ep[e].top[0].len);
		mon_max = max(mon_max, m->ep[e].max_still);
	}
	r->noise = ct_ms(log, tr->ep[CT_EP_QUIET].top[0].len);
	r->noise_p999 = ct_ms(log, ct_p999(&tr->ep[CT_EP_QUIET]));
	r->prepare = ct_ms(log, tr->ep[CT_EP_PREPARE].top[0].len);
	r->detach = ct_ms(log, tr->ep[CT_EP_DETACH].top[0].len);
	r->attach = ct_ms(log, tr->ep[CT_EP_ATTACH].top[0].len);
	r->detach_call = ct_ms(log, ct_call_gap(log, tr, CT_EP_DETACH, CT_EV_DETACH, &lead, &tail));
	r->detach_lead = ct_ms(log, lead);
	r->detach_tail = ct_ms(log, tail);
	r->attach_call = ct_ms(log, ct_call_gap(log, tr, CT_EP_ATTACH, CT_EV_ATTACH, &lead, &tail));
	r->attach_lead = ct_ms(log, lead);
	r->attach_tail = ct_ms(log, tail);
	r->restart = ct_ms(log, max_gap);
	r->mon_restart = ct_ms(log, mon_max);
	r->progress = quiet_rate ? 100 * ct_rate(log, tr, CT_EP_ABSENCE) / quiet_rate : 0;
	r->tsc_ok = log->tsc_offset[0] == log->tsc_offset[1];
	for (e = 0; e < 2; e++)
		r->tsc_ok &= llabs(log->tsc_seen[e] - (__s64)log->tsc_offset[e]) <=
			     (__s64)log->tsc_seen_err[e];

	l.len = 0;
	ct_add(&l, "CT-BENCH run run=%d kind=%s absence_ms=%d tsc_khz=%u", m->run, m->kind,
	       ct_opts.absence_ms, log->tsc_khz);
	/* xcheck: guest minus host TSC read together, minus the offset; within err. */
	ct_add(&l, " tsc_offset_a=%lld tsc_offset_b=%lld tsc_xcheck_a=%lld tsc_xcheck_b=%lld",
	       (long long)log->tsc_offset[0], (long long)log->tsc_offset[1],
	       (long long)(log->tsc_seen[0] - log->tsc_offset[0]),
	       (long long)(log->tsc_seen[1] - log->tsc_offset[1]));
	ct_add(&l, " tsc_xcheck_err=%llu tsc_ok=%d",
	       (unsigned long long)max(log->tsc_seen_err[0], log->tsc_seen_err[1]), r->tsc_ok);
	if (!log->classic) {
		ct_add(&l, " kernel_detach_stall_us=%.1f kernel_attach_stall_us=%.1f",
		       log->kernel_stall_ns[0] / 1e3, log->kernel_stall_ns[1] / 1e3);
		ct_add(&l, " exits=%llu blocked_exits=%llu", (unsigned long long)log->exits,
		       (unsigned long long)log->blocked_exits);
	}
	ct_add(&l, " noise_ms=%.3f noise_p999_ms=%.4f", r->noise, r->noise_p999);
	if (!log->classic)
		ct_add(&l, " prepare_ms=%.3f detach_ms=%.3f attach_ms=%.3f", r->prepare,
		       r->detach, r->attach);
	if (!log->classic)
		ct_add(&l, " detach_call_ms=%.3f attach_call_ms=%.3f", r->detach_call,
		       r->attach_call);
	if (!log->classic) {
		ct_add(&l, " detach_lead_ms=%.3f detach_tail_ms=%.3f", r->detach_lead,
		       r->detach_tail);
		ct_add(&l, " attach_lead_ms=%.3f attach_tail_ms=%.3f", r->attach_lead,
		       r->attach_tail);
	}
	ct_add(&l, " restart_ms=%.3f mon_restart_ms=%.3f progress_pct=%.1f", r->restart,
	       r->mon_restart, r->progress);
	ct_emit(true, "%s", l.buf);
}

/* ---- one run ---- */

/*
 * VMM A of a run (ct_vmm_a_bench()), its log starting now: spawn it and
 * take over the guest's memory before the guest runs.  Returns the
 * holder's mapping of the trail; ct_bench_vmm_a_end() takes the rest.
 */
static struct ct_trail *ct_bench_vmm_a_start(struct ct_run_log *log, bool classic,
					     struct ct_orphan *o, int *sock, pid_t *pid)
{
	struct ct_trail *tr;
	__u32 i;

	log->classic = classic;
	log->t0 = rdtsc();
	log->epoch_tsc[CT_EP_WARMUP] = log->t0;
	*pid = ct_spawn_vmm_a(sock, ct_vmm_a_bench, log);
	ct_take_over(*sock, *pid, o, false);
	tr = ct_map_guest(o, o->h.beat_gpa, CT_TRAIL_PAGES * getpagesize());
	for (i = 0; i < o->h.nr_slots; i++)
		close(o->memfds[i]);
	return tr;
}

/*
 * ... VMM A hands the guest over (a caretaker run: the caretaker fd too,
 * the guest detached, and the absence begins) and exits.
 */
static void ct_bench_vmm_a_end(struct ct_run_log *log, struct ct_trail *tr,
			       struct ct_orphan *o, int sock, pid_t pid)
{
	ct_take_over(sock, pid, o, !log->classic);
	close(sock);
	ct_expect_child_passed(pid, "VMM A");
	ct_event(log, CT_EV_VMM_EXIT, rdtsc());
	if (!log->classic) {
		ct_expect_status(o->ct_fd, KVM_CARETAKER_STATE_DETACHED, 1);
		ct_epoch(log, tr, CT_EP_ABSENCE);
	}
}

static void ct_bench_run(int run, bool classic, struct ct_run_result *r)
{
	struct ct_monitor *m = calloc(1, sizeof(*m));
	struct ct_orphan *o = calloc(1, sizeof(*o));
	struct kvm_caretaker_status st;
	struct ct_run_log *log;
	size_t trail = CT_TRAIL_PAGES * getpagesize();
	int sock, status;
	pid_t pid;

	TEST_ASSERT(m && o, "calloc");
	log = mmap(NULL, sizeof(*log), PROT_READ | PROT_WRITE,
		   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	TEST_ASSERT(log != MAP_FAILED, "mmap");
	ct_emit(true, "%s run-start run=%d kind=%s absence_ms=%d", ct_prefix(), run,
		classic ? "classic" : "caretaker", ct_opts.absence_ms);

	/* The guest's memory, before it runs: the monitor watches all of it. */
	m->tr = ct_bench_vmm_a_start(log, classic, o, &sock, &pid);
	m->log = log;
	m->run = run;
	m->kind = classic ? "classic" : "caretaker";
	ct_monitor_start(m);

	ct_bench_vmm_a_end(log, m->tr, o, sock, pid);
	ct_orphan_map(o);
	o->log = log;
	/* No VMM at all for T. */
	ct_sleep_ms(ct_opts.absence_ms);
	if (!classic) {
		st = ct_status(o->ct_fd);
		log->exits = st.exits;
		log->blocked_exits = st.blocked_exits;
		ct_epoch(log, m->tr, CT_EP_BUILD);
	}
	ct_event(log, CT_EV_VMM_START, rdtsc());
	pid = ct_fork();
	if (!pid) {
		if (classic)
			vmm_b_bench_restore(o);
		else
			vmm_b_bench_adopt(o);
		exit(KSFT_PASS);
	}
	status = ct_wait_child(pid, "VMM B");
	ct_monitor_stop(m);
	/* The figures, if VMM B got as far: also when it failed a check after. */
	if (log->end_tsc)
		ct_report_run(m, r);
	TEST_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == KSFT_PASS,
		    "VMM B failed (wait status %#x)", status);
	TEST_ASSERT(r->tsc_ok,
		    "guest TSC minus host TSC changed across the restart: the gaps cannot be trusted");

	munmap(m->tr, trail);
	ct_orphan_close(o);
	munmap(log, sizeof(*log));
	free(m);
}

/* ---- the table ---- */

static int ct_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Median and max of one figure over @n runs. */
static void ct_median_max(const struct ct_run_result *r, int n, size_t field,
			  double *median, double *max)
{
	double v[CT_MAX_RUNS];
	int i;

	for (i = 0; i < n; i++)
		v[i] = *(const double *)((const char *)&r[i] + field);
	qsort(v, n, sizeof(v[0]), ct_cmp_double);
	*median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	*max = v[n - 1];
}

/*
 * A stall next to the noise floor: "within the noise floor" where every
 * run's stall is no longer than that run's longest quiet gap, else the
 * figure and in how many runs it was above; never a ratio to the floor.
 */
static void ct_say_stall(const char *what, const struct ct_run_result *r, int n,
			 size_t field)
{
	double med, max;
	int i, above = 0;

	ct_median_max(r, n, field, &med, &max);
	for (i = 0; i < n; i++)
		above += *(const double *)((const char *)&r[i] + field) > r[i].noise;
	if (!above)
		ct_emit(false, "# %-34s %9.3f %9.3f  within the noise floor (%d of %d runs)",
			what, med, max, n, n);
	else
		ct_emit(false, "# %-34s %9.3f %9.3f  above the noise floor in %d of %d runs",
			what, med, max, above, n);
}

static void ct_say_figure(const char *what, const struct ct_run_result *r, int n,
			  size_t field, const char *note)
{
	double med, max;

	ct_median_max(r, n, field, &med, &max);
	ct_emit(false, "# %-34s %9.3f %9.3f  %s", what, med, max, note);
}

static void ct_print_table(const struct ct_run_result *ct, const struct ct_run_result *cl,
			   int n)
{
	double med, max, ct_restart, cl_restart;
	int i, above = 0;

	ct_emit(false, "# Definitions (every time is a gap in the guest's own TSC, which");
	ct_emit(false, "# runs with the host's: the TSC offsets and a read of both were checked):");
	ct_emit(false, "#  noise floor    the longest gap, and the p99.9 gap (log2 bucket bound),");
	ct_emit(false, "#                 in T = %d ms of the same run with no event at all",
		ct_opts.absence_ms);
	ct_emit(false, "#  PREPARE        the longest gap in the call and %d ms after it",
		CT_AROUND_MS);
	ct_emit(false, "#                 (outside the stall by design: still attached)");
	ct_emit(false, "#  DETACH/ATTACH  the longest gap in the call +-%d ms; of it, the",
		CT_AROUND_MS);
	ct_emit(false, "#                 longest gap that overlaps the call itself (the");
	ct_emit(false, "#                 handover, apart from the rest of the window; if none");
	ct_emit(false, "#                 of the window's %d longest gaps does, the shortest",
		CT_TOP_GAPS);
	ct_emit(false, "#                 of them, which bounds it); and how long that gap");
	ct_emit(false, "#                 began before the call and ended after its return");
	ct_emit(false, "#  restart stall  the longest gap from %d ms before DETACH until %d ms",
		CT_AROUND_MS, CT_AROUND_MS);
	ct_emit(false, "#                 after ATTACH (classic: from the pause until %d ms",
		CT_AROUND_MS);
	ct_emit(false, "#                 after the new VMM runs the restored vCPU, T later)");
	ct_emit(false, "#  progress       guest iterations per 10^9 host cycles over the T");
	ct_emit(false, "#                 with no VMM (classic: the whole restart epoch), as %%");
	ct_emit(false, "#                 of the same guest attached (quiet)");
	ct_emit(false, "#  monitor        the holder sampling the counter every ~1 ms: the");
	ct_emit(false, "#                 longest it saw the counter stand still");
	ct_emit(false, "#");
	ct_emit(false, "# %-34s %9s %9s", "", "median", "max");
	ct_emit(false, "# caretaker, %d runs (interleaved with %d classic)", n, n);
	ct_say_figure("noise floor: longest gap (ms)", ct, n,
		      offsetof(struct ct_run_result, noise), "");
	ct_say_figure("noise floor: p99.9 gap (ms)", ct, n,
		      offsetof(struct ct_run_result, noise_p999), "");
	ct_say_stall("longest gap after PREPARE (ms)", ct, n,
		     offsetof(struct ct_run_result, prepare));
	ct_say_stall("longest gap around DETACH (ms)", ct, n,
		     offsetof(struct ct_run_result, detach));
	ct_say_stall("  of it, across the DETACH call (ms)", ct, n,
		     offsetof(struct ct_run_result, detach_call));
	ct_say_figure("    of that, before the call (ms)", ct, n,
		      offsetof(struct ct_run_result, detach_lead), "");
	ct_say_figure("    of that, after it returned (ms)", ct, n,
		      offsetof(struct ct_run_result, detach_tail), "");
	ct_say_stall("longest gap around ATTACH (ms)", ct, n,
		     offsetof(struct ct_run_result, attach));
	ct_say_stall("  of it, across the ATTACH call (ms)", ct, n,
		     offsetof(struct ct_run_result, attach_call));
	ct_say_figure("    of that, before the call (ms)", ct, n,
		      offsetof(struct ct_run_result, attach_lead), "");
	ct_say_figure("    of that, after it returned (ms)", ct, n,
		      offsetof(struct ct_run_result, attach_tail), "");
	ct_say_stall("restart stall (ms)", ct, n, offsetof(struct ct_run_result, restart));
	ct_say_figure("  monitor's view (ms)", ct, n,
		      offsetof(struct ct_run_result, mon_restart), "");
	ct_median_max(ct, n, offsetof(struct ct_run_result, progress), &med, &max);
	for (i = 0; i < n; i++)
		above += ct[i].progress >= 95;
	ct_emit(false, "# %-34s %9.1f %9.1f  target >= 95%%: met in %d of %d runs",
		"progress without a VMM (%)", med, max, above, n);
	ct_emit(false, "# classic restart, %d runs", n);
	ct_say_figure("noise floor: longest gap (ms)", cl, n,
		      offsetof(struct ct_run_result, noise), "");
	ct_say_stall("restart stall (ms)", cl, n, offsetof(struct ct_run_result, restart));
	ct_say_figure("progress without a VMM (%)", cl, n,
		      offsetof(struct ct_run_result, progress), "");

	ct_median_max(ct, n, offsetof(struct ct_run_result, restart), &ct_restart, &max);
	ct_median_max(cl, n, offsetof(struct ct_run_result, restart), &cl_restart, &max);
	ct_median_max(ct, n, offsetof(struct ct_run_result, noise), &med, &max);
	if (ct_restart <= med)
		ct_emit(false,
			"# With T = %d ms: the classic restart stalls the guest %.0f ms (median); the caretaker's is within the noise floor (%.1f ms).",
			ct_opts.absence_ms, cl_restart, med);
	else
		ct_emit(false,
			"# With T = %d ms: the classic restart stalls the guest %.0f ms, the caretaker's %.1f ms (median; noise floor %.1f ms).",
			ct_opts.absence_ms, cl_restart, ct_restart, med);
}

/* Guest command @cmd under whoever runs the guest now; waits for it. */
static void ct_guest_command(struct ct_beat *beat, __u64 cmd, const char *what)
{
	__u64 done = READ_ONCE(beat->done);

	WRITE_ONCE(beat->command, cmd);
	ct_expect_done(beat, done + 1, what);
}

/*
 * The fast path against KVM, in one VM, interleaved: the guest measures
 * under KVM, then detached (the runtime), then adopted back by its own VM
 * (KVM again), @runs times.
 */
static void ct_bench_fastpath(int runs)
{
	__u32 kvm[4], rt[4], kvm2[4];
	struct ct_guest g;
	struct ct_line l;
	int i, ct_fd;

	ct_param_set("fixed_insn_len", "Y");
	for (i = 0; i < runs; i++) {
		ct_guest_create_apic(&g);
		ct_guest_run(&g);
		ct_guest_command(g.beats, CT_CMD_MEASURE, "the measurements under KVM");
		memcpy(kvm, g.beats[0].cpuid, sizeof(kvm));
		ct_fd = ct_prepare(g.vm, ct_cpus, 1);
		TEST_ASSERT(ct_fd >= 0, "PREPARE: %s", strerror(errno));
		ct_guest_detach(&g, ct_fd);
		ct_guest_command(g.beats, CT_CMD_MEASURE, "the measurements while detached");
		memcpy(rt, g.beats[0].cpuid, sizeof(rt));
		ct_expect_status(ct_fd, KVM_CARETAKER_STATE_DETACHED, 1);
		TEST_ASSERT(!ct_attach(g.vm, ct_fd), "ATTACH: %s", strerror(errno));
		ct_guest_run(&g);
		ct_guest_command(g.beats, CT_CMD_MEASURE, "the measurements under KVM again");
		memcpy(kvm2, g.beats[0].cpuid, sizeof(kvm2));
		ct_wait_cpu_online(ct_cpus[0]);
		ct_guest_pause(&g);
		close(ct_fd);
		kvm_vm_free(g.vm);
		l.len = 0;
		ct_add(&l, "%s fastpath run=%d", ct_prefix(), i + 1);
		ct_add(&l, " cpuid_kvm=%u cpuid_rt=%u cpuid_kvm2=%u", kvm[0], rt[0], kvm2[0]);
		ct_add(&l, " tpr_kvm=%u tpr_rt=%u tpr_kvm2=%u", kvm[1], rt[1], kvm2[1]);
		ct_add(&l, " late_med_us_kvm=%u late_med_us_rt=%u", kvm[2], rt[2]);
		ct_add(&l, " late_max_us_kvm=%u late_max_us_rt=%u", kvm[3], rt[3]);
		ct_emit(true, "%s", l.buf);
	}
	ct_param_set("fixed_insn_len", "N");
}

#define CT_OVERHEAD_PAIRS	60

/* Guest loop iterations per second, each one a CPUID exit to KVM. */
static double ct_attached_rate(void)
{
	struct ct_guest g;
	__u64 c0, c1, t0, t1;

	ct_no_opt_in = true;
	ct_guest_create_apic(&g);
	ct_no_opt_in = false;
	g.beats[0].spin_cpuid = 1;
	ct_guest_run(&g);
	ct_expect_beats(g.beats, 1, CT_BEATS_ALIVE, "the CPUID loop");
	c0 = READ_ONCE(g.beats[0].counter);
	t0 = ct_now_ns();
	ct_sleep_ms(1000);
	c1 = READ_ONCE(g.beats[0].counter);
	t1 = ct_now_ns();
	ct_guest_pause(&g);
	kvm_vm_free(g.vm);
	return (double)(c1 - c0) * 1e9 / (t1 - t0);
}

/*
 * Attached-mode overhead: the same exit-bound guest with caretaker.ko
 * loaded and not, in pairs whose order alternates.  The report computes
 * the paired difference and its confidence interval.  Every run is on
 * the same CPU, the last one (this thread, hence its vCPU thread and
 * modprobe), so that where the scheduler puts a vCPU thread is not in
 * the difference; a first run, not counted, warms up.  Each pair takes
 * about 2 s; 60 pairs bring the 95 % interval to about +-0.6 % here
 * (one pair's difference: about 2.2 %).
 */
static void ct_bench_overhead(int pairs)
{
	cpu_set_t old, one;
	double r[2];
	int i, k, loaded;

	TEST_ASSERT(!sched_getaffinity(0, sizeof(old), &old), "sched_getaffinity");
	CPU_ZERO(&one);
	CPU_SET(sysconf(_SC_NPROCESSORS_ONLN) - 1, &one);
	TEST_ASSERT(!sched_setaffinity(0, sizeof(one), &one), "sched_setaffinity: %s",
		    strerror(errno));
	ct_attached_rate();
	for (i = 0; i < pairs; i++) {
		for (k = 0; k < 2; k++) {
			loaded = (i + k) % 2;
			TEST_ASSERT(!system(loaded ? "modprobe caretaker" :
					    "modprobe -r caretaker"), "modprobe");
			r[loaded] = ct_attached_rate();
		}
		ct_emit(true, "%s overhead pair=%d loaded_per_s=%.0f unloaded_per_s=%.0f",
			ct_prefix(), i + 1, r[1], r[0]);
	}
	TEST_ASSERT(!sched_setaffinity(0, sizeof(old), &old), "sched_setaffinity");
	TEST_ASSERT(!system("modprobe caretaker"), "modprobe caretaker");
}

/* bench: interleaved caretaker and classic runs; demo: one of each, shown live. */
static void test_bench(void)
{
	struct ct_run_result *ct = calloc(CT_MAX_RUNS, sizeof(*ct));
	struct ct_run_result *cl = calloc(CT_MAX_RUNS, sizeof(*cl));
	int i;

	TEST_ASSERT(ct && cl, "calloc");
	ct_child_ms = CT_CHILD_MS + 2 * ct_opts.absence_ms + ct_opts.after_ms;
	fflush(stdout);
	ct_emit(true, "%s config mode=%s absence_ms=%d after_ms=%d around_ms=%d runs=%d",
		ct_prefix(), ct_opts.demo ? "demo" : "bench", ct_opts.absence_ms,
		ct_opts.after_ms, CT_AROUND_MS, ct_opts.runs);
	for (i = 0; i < ct_opts.runs; i++) {
		ct_bench_run(2 * i + 1, false, &ct[i]);
		ct_bench_run(2 * i + 2, true, &cl[i]);
	}
	ct_print_table(ct, cl, ct_opts.runs);
	if (!ct_opts.demo) {
		ct_bench_fastpath(ct_opts.runs);
		ct_bench_overhead(CT_OVERHEAD_PAIRS);
	}
	ct_emit(true, "%s done runs=%d", ct_prefix(), 2 * ct_opts.runs);
	free(ct);
	free(cl);
}

/* The demo's tick sampler: timer ticks per CT_TICK_BIN_MS, with the state. */
#define CT_TICK_BIN_MS	250

struct ct_tick_sampler {
	struct ct_orphan *o;
	pthread_t thread;
	bool stop;
};

static void *ct_tick_sampler_main(void *arg)
{
	struct ct_tick_sampler *ts = arg;
	struct ct_timer_log *tl = ct_timer_log(ts->o->beats);
	__u64 t0 = ct_now_ns(), last = READ_ONCE(tl->ticks), now, next = t0;
	struct kvm_caretaker_status st;
	struct timespec ts_next;

	while (!__atomic_load_n(&ts->stop, __ATOMIC_ACQUIRE)) {
		/* Bins of exactly CT_TICK_BIN_MS: sleep to absolute times. */
		next += CT_TICK_BIN_MS * 1000000ULL;
		ts_next.tv_sec = next / 1000000000ULL;
		ts_next.tv_nsec = next % 1000000000ULL;
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts_next, NULL) == EINTR)
			;
		now = READ_ONCE(tl->ticks);
		st = (struct kvm_caretaker_status){ 0 };
		ioctl(ts->o->ct_fd, KVM_CARETAKER_GET_STATUS, &st);
		ct_emit(true, "%s tick t_ms=%llu ticks=%llu state=%s", ct_prefix(),
			(unsigned long long)(ct_now_ns() - t0) / 1000000,
			(unsigned long long)(now - last),
			st.state == KVM_CARETAKER_STATE_ATTACHED ? "adopted" : "detached");
		last = now;
	}
	return NULL;
}

static void vmm_b_tick_demo(struct ct_orphan *o)
{
	struct ct_adopter a;

	ct_adopter_create(&a, o, CT_FLAW_NONE);
	ct_adopt(&a, o);
	ct_adopter_run(&a);
	ct_sleep_ms(1500);
	ct_adopter_pause(&a);
	ct_adopter_free(&a, o);
}

/*
 * The demo's second part: a guest with its own tick (a 2 ms periodic
 * x2APIC timer, HLT between ticks) through a VMM restart: the ticks per
 * 250 ms with no VMM at all for @absence_ms, then under VMM B.
 */
static void ct_demo_tick(int absence_ms)
{
	struct ct_tick_sampler ts = { 0 };
	struct kvm_caretaker_vcpu_status vs;
	struct ct_line l;

	ct_param_set("fixed_insn_len", "Y");
	ts.o = ct_orphan_make(1, CT_A_TIMER | (CT_TM_PERIODIC << 8));
	TEST_ASSERT(!pthread_create(&ts.thread, NULL, ct_tick_sampler_main, &ts),
		    "pthread_create");
	ct_sleep_ms(absence_ms);
	vs = ct_vcpu_status(ts.o->ct_fd, 0);
	ct_vmm_b(ts.o, vmm_b_tick_demo);
	__atomic_store_n(&ts.stop, true, __ATOMIC_RELEASE);
	pthread_join(ts.thread, NULL);
	l.len = 0;
	ct_add(&l, "%s ticksum period_us=%d", ct_prefix(), CT_TIMER_PERIOD_US);
	ct_add(&l, " fires=%llu injected=%llu halts=%llu max_late_us=%llu",
	       (unsigned long long)vs.timer_fires, (unsigned long long)vs.injected,
	       (unsigned long long)vs.halts, (unsigned long long)vs.max_late_ns / 1000);
	ct_emit(true, "%s", l.buf);
	ct_orphan_close(ts.o);
	ct_param_set("fixed_insn_len", "N");
}

static void test_demo(void)
{
	ct_opts.demo = true;
	ct_opts.runs = 1;
	test_bench();
	ct_demo_tick(ct_opts.absence_ms);
}

/* ---- live update: the orphan in a LUO session ---- */

#define CT_LUO_DEV		"/dev/liveupdate"
#define CT_LUO_KEXEC_SESSION	"caretaker-kexec"
#define CT_LUO_TOKEN_MEMFD	1	/* memfd i: CT_LUO_TOKEN_MEMFD + i */
#define CT_LUO_TOKEN_META	100
#define CT_LUO_TOKEN_CT		200
#define CT_KEXEC_MAGIC		0x6b78656374636bULL
/* The longest the guest may go without an iteration across the kexec. */
#define CT_KEXEC_MAX_GAP_MS	100
/* Its samples' period: the ring then holds the last 25 s. */
#define CT_KEXEC_SAMPLE_MS	50

/* What stage 1 leaves stage 2, in a memfd of the session. */
struct ct_kexec_meta {
	__u64 magic;
	__u64 epoch;			/* of the trail, counting across the kexec */
	__u64 stage1_tsc;		/* host TSC as stage 1 handed over */
	struct ct_handover h;
};

static int ct_luo_session(const char *name, bool retrieve)
{
	struct liveupdate_ioctl_create_session c = { .size = sizeof(c) };
	struct liveupdate_ioctl_retrieve_session r = { .size = sizeof(r) };
	int luo, ret;

	luo = open(CT_LUO_DEV, O_RDWR);
	if (luo < 0)
		ksft_exit_skip("%s: %s\n", CT_LUO_DEV, strerror(errno));
	if (retrieve) {
		snprintf((char *)r.name, sizeof(r.name), "%s", name);
		ret = ioctl(luo, LIVEUPDATE_IOCTL_RETRIEVE_SESSION, &r);
		TEST_ASSERT(!ret, "retrieve LUO session %s: %s", name, strerror(errno));
	} else {
		snprintf((char *)c.name, sizeof(c.name), "%s", name);
		ret = ioctl(luo, LIVEUPDATE_IOCTL_CREATE_SESSION, &c);
		TEST_ASSERT(!ret, "create LUO session %s: %s", name, strerror(errno));
	}
	close(luo);
	return retrieve ? r.fd : c.fd;
}

static int ct_luo_preserve(int session, int fd, __u64 token)
{
	struct liveupdate_session_preserve_fd a = {
		.size = sizeof(a), .fd = fd, .token = token,
	};

	return ioctl(session, LIVEUPDATE_SESSION_PRESERVE_FD, &a);
}

static int ct_luo_retrieve(int session, __u64 token)
{
	struct liveupdate_session_retrieve_fd a = { .size = sizeof(a), .token = token };

	return ioctl(session, LIVEUPDATE_SESSION_RETRIEVE_FD, &a) ? -1 : a.fd;
}

/* Keep @fds open in a process of its own until the machine goes down. */
/* A memfd of @size bytes for what one kernel tells the next; mapped. */
static void *ct_meta_memfd(const char *name, size_t size, int *fd)
{
	void *p;

	*fd = memfd_create(name, 0);
	TEST_ASSERT(*fd >= 0 && !ftruncate(*fd, size), "memfd %s", name);
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
	TEST_ASSERT(p != MAP_FAILED, "mmap %s", name);
	return p;
}

static void ct_hold_forever(void)
{
	pid_t pid = fork();

	TEST_ASSERT(pid >= 0, "fork");
	if (pid)
		return;
	setsid();
	close(STDIN_FILENO);
	close(STDOUT_FILENO);
	close(STDERR_FILENO);
	for (;;)
		pause();
}

static void vmm_b_attach_preserved(struct ct_orphan *o)
{
	struct ct_adopter a;

	ct_adopter_create(&a, o, CT_FLAW_NONE);
	EXPECT_REFUSED(ct_attach(a.vm, o->ct_fd), EBUSY, "the orphan is not detached");
	ct_adopter_free(&a, o);
}

/*
 * A caretaker fd in a LUO session: the orphan is serialized (PRESERVED),
 * keeps running, cannot be adopted; closing the session before a kexec
 * unpreserves it, and it is detached, running and adoptable as before.
 */
static void test_luo_cancel(void)
{
	struct ct_orphan *o = ct_orphan_make(1, 0);
	int session;

	if (!(kvm_check_cap(KVM_CAP_CARETAKER) & KVM_CARETAKER_FEAT_LUO))
		ksft_exit_skip("caretaker.ko does not claim KVM_CARETAKER_FEAT_LUO\n");
	session = ct_luo_session("caretaker-cancel", false);
	TEST_ASSERT(!ct_luo_preserve(session, o->ct_fd, CT_LUO_TOKEN_CT),
		    "preserve the caretaker fd: %s", strerror(errno));
	ct_expect_status(o->ct_fd, KVM_CARETAKER_STATE_PRESERVED, 1);
	ct_expect_beats(o->beats, 1, CT_BEATS_ALIVE, "preserved");
	ct_expect_cpu_parked(ct_cpus[0]);
	ct_vmm_b(o, vmm_b_attach_preserved);
	ct_expect_status(o->ct_fd, KVM_CARETAKER_STATE_PRESERVED, 1);

	/* Cancel: the session goes before any kexec. */
	TEST_ASSERT(!close(session), "close the session");
	ct_expect_status(o->ct_fd, KVM_CARETAKER_STATE_DETACHED, 1);
	ct_expect_beats(o->beats, 1, CT_BEATS_ALIVE, "after the session closed");
	ct_expect_cpu_parked(ct_cpus[0]);

	/* Preserved and unpreserved once more, then adopted. */
	session = ct_luo_session("caretaker-cancel", false);
	TEST_ASSERT(!ct_luo_preserve(session, o->ct_fd, CT_LUO_TOKEN_CT),
		    "preserve the caretaker fd again: %s", strerror(errno));
	TEST_ASSERT(!close(session), "close the session");
	ct_vmm_b(o, vmm_b_heartbeat);
	ct_orphan_close(o);
}

static int ct_reboot_kexec(void)
{
	return reboot(LINUX_REBOOT_CMD_KEXEC);
}

/*
 * A kexec while an orphan runs but is not preserved: the CPU park code
 * refuses it (the CPU would run on memory the next kernel reuses).  The
 * caretaker fd preserved without the guest's memfds: .freeze() must
 * refuse the kexec (the guest would run on memory the next kernel hands
 * out).  Either way the host stays up and the orphan is as it was.
 */
static void test_luo_kexec_refused(void)
{
	struct ct_orphan *o = ct_orphan_make(1, 0);
	int session, kfd, ifd;
	long r;

	if (!(kvm_check_cap(KVM_CAP_CARETAKER) & KVM_CARETAKER_FEAT_LUO))
		ksft_exit_skip("caretaker.ko does not claim KVM_CARETAKER_FEAT_LUO\n");
	kfd = open("/host/bzImage", O_RDONLY);
	ifd = open("/host/initramfs.cpio", O_RDONLY);
	if (kfd < 0 || ifd < 0)
		ksft_exit_skip("no kernel to load for kexec in /host\n");
	r = syscall(SYS_kexec_file_load, kfd, ifd, 1UL, "", 0UL);
	TEST_ASSERT(!r, "kexec_file_load: %s", strerror(errno));
	/* Not handed over: the next kernel would reuse what the CPU runs on. */
	EXPECT_REFUSED(ct_reboot_kexec(), EBUSY,
		       "is parked, and its owner did not hand it over");
	ct_expect_beats(o->beats, 1, CT_BEATS_ALIVE, "after a kexec refused for the CPU");
	session = ct_luo_session("caretaker-refused", false);
	TEST_ASSERT(!ct_luo_preserve(session, o->ct_fd, CT_LUO_TOKEN_CT),
		    "preserve the caretaker fd: %s", strerror(errno));
	EXPECT_REFUSED(ct_reboot_kexec(), EBUSY,
		       "memslot 0's memory is not preserved");
	r = syscall(SYS_kexec_file_load, -1, -1, 0UL, NULL, (unsigned long)KEXEC_FILE_UNLOAD);
	TEST_ASSERT(!r, "kexec_file_load(KEXEC_FILE_UNLOAD): %s", strerror(errno));

	ct_expect_status(o->ct_fd, KVM_CARETAKER_STATE_PRESERVED, 1);
	ct_expect_beats(o->beats, 1, CT_BEATS_ALIVE, "after the refused kexec");
	TEST_ASSERT(!close(session), "close the session");
	ct_expect_status(o->ct_fd, KVM_CARETAKER_STATE_DETACHED, 1);
	ct_vmm_b(o, vmm_b_heartbeat);
	ct_orphan_close(o);
	close(kfd);
	close(ifd);
}

/*
 * Stage 1 of the kexec test: an orphan running guest_trail(), its memfds
 * and caretaker fd preserved in a LUO session that a process of its own
 * holds; the test host then kexecs into stage 2.
 */
static void test_kexec_stage1(void)
{
	struct ct_orphan *o;
	struct ct_trail *tr;
	struct ct_kexec_meta *m;
	int session, meta;
	__u32 i;

	o = ct_orphan_make(1, CT_A_TRAIL);
	tr = (struct ct_trail *)o->beats;

	if (!(kvm_check_cap(KVM_CAP_CARETAKER) & KVM_CARETAKER_FEAT_LUO))
		ksft_exit_skip("caretaker.ko does not claim KVM_CARETAKER_FEAT_LUO\n");
	session = ct_luo_session(CT_LUO_KEXEC_SESSION, false);
	for (i = 0; i < o->h.nr_slots; i++)
		TEST_ASSERT(!ct_luo_preserve(session, o->memfds[i], CT_LUO_TOKEN_MEMFD + i),
			    "preserve memfd %u: %s", i, strerror(errno));

	WRITE_ONCE(tr->epoch, CT_EP_ABSENCE);
	/* (TSC, counter) samples into the ring of its trail. */
	WRITE_ONCE(tr->ring_every, (__u64)CT_KEXEC_SAMPLE_MS * o->h.state[0].tsc_khz);
	ct_expect_beats(o->beats, 1, CT_BEATS_ALIVE, "before preserving");
	TEST_ASSERT(!ct_luo_preserve(session, o->ct_fd, CT_LUO_TOKEN_CT),
		    "preserve the caretaker fd: %s", strerror(errno));
	ct_expect_status(o->ct_fd, KVM_CARETAKER_STATE_PRESERVED, 1);
	ct_expect_beats(o->beats, 1, CT_BEATS_ALIVE, "preserved");

	m = ct_meta_memfd("caretaker-kexec-meta", sizeof(*m), &meta);
	m->magic = CT_KEXEC_MAGIC;
	m->epoch = CT_EP_ABSENCE;
	m->h = o->h;
	m->stage1_tsc = rdtsc();
	munmap(m, sizeof(*m));
	TEST_ASSERT(!ct_luo_preserve(session, meta, CT_LUO_TOKEN_META),
		    "preserve the meta memfd: %s", strerror(errno));
	ksft_print_msg("kexec_stage1: guest at %llu iterations, session '%s' held for the kexec\n",
		       (unsigned long long)READ_ONCE(tr->beat.counter), CT_LUO_KEXEC_SESSION);
	ct_hold_forever();
}

/*
 * The rest of the last line of this boot's kernel log that contains @key,
 * into @rest; false if none does.
 */
static bool ct_kmsg_last(const char *key, char *rest, size_t len)
{
	char buf[1024];
	bool found = false;
	ssize_t n;
	int fd;

	fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);
	TEST_ASSERT(fd >= 0, "open /dev/kmsg");
	while ((n = read(fd, buf, sizeof(buf) - 1)) != 0) {
		char *p;

		if (n < 0) {
			if (errno == EPIPE)
				continue;
			break;
		}
		buf[n] = 0;
		p = strstr(buf, key);
		if (p) {
			snprintf(rest, len, "%s", p + strlen(key));
			found = true;
		}
	}
	close(fd);
	return found;
}

/* The stamps the CPU park handover logged in this boot. */
static bool ct_kmsg_stamps(__u64 *out_tsc, __u64 *in_tsc)
{
	char rest[256];

	return ct_kmsg_last("cpu_park: handed over at TSC ", rest, sizeof(rest)) &&
	       sscanf(rest, "%llu, this kernel started at TSC %llu",
		      (unsigned long long *)out_tsc, (unsigned long long *)in_tsc) == 2;
}

/* When this kernel started, as the CPU park code logs it in a KHO boot. */
static bool ct_kmsg_start(__u64 *in_tsc)
{
	char rest[256];

	return ct_kmsg_last("cpu_park: none handed over; this kernel started at TSC ",
			    rest, sizeof(rest)) &&
	       sscanf(rest, "%llu", (unsigned long long *)in_tsc) == 1;
}

/*
 * The caretaker fd from the session, with the holder's figures page: the
 * orphan is detached and its CPU still parked.
 */
static void ct_retrieve_orphan(struct ct_orphan *o, int session)
{
	o->ct_fd = ct_luo_retrieve(session, CT_LUO_TOKEN_CT);
	TEST_ASSERT(o->ct_fd >= 0, "retrieve the caretaker fd: %s", strerror(errno));
	o->eventfd = -1;
	o->fig = mmap(NULL, getpagesize(), PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	TEST_ASSERT(o->fig != MAP_FAILED, "mmap");
	ct_expect_status(o->ct_fd, KVM_CARETAKER_STATE_DETACHED, 1);
	ct_expect_cpu_parked(ct_cpus[0]);
}

/* How far kvmclock may be from VMM A's reading plus the TSC's elapsed time. */
#define CT_KEXEC_CLOCK_SLACK_MS	20

/*
 * kvmclock after the kexec: not behind VMM A's reading, and ahead of it by
 * the time the host TSC says passed (the TSC runs through the kexec), so
 * neither a jump nor a change of rate.
 */
static void ct_expect_clock(struct ct_adopter *a, struct ct_orphan *o)
{
	const struct kvm_clock_data *c0 = &o->h.clock;
	struct kvm_clock_data c1 = {};
	__u64 khz = o->h.state[0].tsc_khz, want;
	__s64 off_ms;

	vm_ioctl(a->vm, KVM_GET_CLOCK, &c1);
	TEST_ASSERT((c0->flags & KVM_CLOCK_HOST_TSC) && (c1.flags & KVM_CLOCK_HOST_TSC),
		    "KVM_GET_CLOCK without the host TSC: flags %#x, %#x", c0->flags, c1.flags);
	want = c0->clock + (c1.host_tsc - c0->host_tsc) * 1000000 / khz;
	off_ms = ((__s64)(c1.clock - want)) / 1000000;
	ksft_print_msg("kexec: kvmclock +%llu ms since VMM A read it, %lld ms off the host TSC\n",
		       (unsigned long long)(c1.clock - c0->clock) / 1000000, (long long)off_ms);
	TEST_ASSERT(c1.clock > c0->clock, "kvmclock went back across the kexec");
	TEST_ASSERT(off_ms <= CT_KEXEC_CLOCK_SLACK_MS && off_ms >= -CT_KEXEC_CLOCK_SLACK_MS,
		    "kvmclock is %lld ms off the elapsed host TSC (slack %d ms)",
		    (long long)off_ms, CT_KEXEC_CLOCK_SLACK_MS);
}

/*
 * VMM B in the new kernel: an adopter whose memslot maps other memory is
 * refused, the guest running on; one on the retrieved memfds adopts it,
 * with the vCPU state as VMM A left it, and it runs under KVM again.
 */
static void vmm_b_kexec(struct ct_orphan *o)
{
	struct ct_adopter a;

	ct_adopter_create(&a, o, CT_FLAW_MEMFD);
	EXPECT_REFUSED(ct_attach(a.vm, o->ct_fd), EINVAL,
		       ct_flaw_reasons[CT_FLAW_MEMFD]);
	ct_adopter_free(&a, o);
	ct_expect_status(o->ct_fd, KVM_CARETAKER_STATE_DETACHED, 1);
	ct_expect_beats(o->beats, 1, CT_BEATS_ALIVE, "after a refused ATTACH");

	ct_tsc_unscaled = true;
	ct_adopter_create(&a, o, CT_FLAW_NONE);
	ct_adopt(&a, o);
	ct_expect_same_state(a.vcpus[0], &o->h.state[0]);
	ct_expect_clock(&a, o);
	ct_adopter_run(&a);
	ct_expect_running_under_b(&a, o);
	ct_adopter_pause(&a);
	ct_adopter_free(&a, o);
}

/*
 * The guest ran through the kexec (or kexecs): its iterations, in host
 * TSC (the guest's minus its TSC offset), began before stage 1 handed it
 * over and went on after this kernel started, with no gap above
 * CT_KEXEC_MAX_GAP_MS.  Returns the holder's mapping of the trail.
 */
static struct ct_trail *ct_kexec_check_trail(struct ct_orphan *o,
					     const struct ct_kexec_meta *m)
{
	const struct ct_epoch_stats *e;
	__u64 out_tsc, in_tsc, off, first, last, khz, head, h, t, from, inside = 0;
	struct ct_trail *tr;

	TEST_ASSERT(ct_kmsg_stamps(&out_tsc, &in_tsc),
		    "this kernel logged no CPU park handover");
	tr = ct_map_guest(o, o->h.beat_gpa, CT_TRAIL_PAGES * getpagesize());
	o->beats = &tr->beat;
	ct_expect_beats(&tr->beat, 1, CT_BEATS_ALIVE, "after the kexec");
	e = &tr->ep[m->epoch];
	off = o->h.state[0].tsc_offset;
	khz = o->h.state[0].tsc_khz;
	first = READ_ONCE(e->first_tsc) - off;
	last = READ_ONCE(e->last_tsc) - off;
	ksft_print_msg("kexec: stage 1 handed over at TSC %llu, the kexec started at %llu\n",
		       (unsigned long long)m->stage1_tsc, (unsigned long long)out_tsc);
	ksft_print_msg("kexec: this kernel started at %llu, %llu ms later\n",
		       (unsigned long long)in_tsc,
		       (unsigned long long)((in_tsc - out_tsc) / khz));
	ksft_print_msg("kexec: guest iterations from %lld ms before to %lld ms after it: %llu\n",
		       (long long)(out_tsc - first) / (long long)khz,
		       (long long)(last - in_tsc) / (long long)khz,
		       (unsigned long long)READ_ONCE(e->iters));
	ksft_print_msg("kexec: longest gap %llu us, ended %lld ms after the kexec started\n",
		       (unsigned long long)(READ_ONCE(e->top[0].len) * 1000 / khz),
		       (long long)(READ_ONCE(e->top[0].end) - off - out_tsc) / (long long)khz);
	TEST_ASSERT(out_tsc && in_tsc > out_tsc, "stamps out of order");
	TEST_ASSERT((__s64)(first - out_tsc) < 0,
		    "the guest's first iteration is not before the kexec");
	TEST_ASSERT((__s64)(last - in_tsc) > 0,
		    "the guest's last iteration is not after this kernel started");
	TEST_ASSERT(READ_ONCE(e->top[0].len) < CT_KEXEC_MAX_GAP_MS * khz,
		    "the guest stopped for %llu ms (bound %d ms)",
		    (unsigned long long)(READ_ONCE(e->top[0].len) / khz), CT_KEXEC_MAX_GAP_MS);
	o->last_tsc[0] = READ_ONCE(tr->beat.tsc);
	/*
	 * Its own samples, strictly between the two kernels' stamps: at
	 * least half of one per CT_KEXEC_SAMPLE_MS over the part of the
	 * kexec the ring still covers (it keeps the last CT_TRAIL_RING).
	 */
	head = READ_ONCE(tr->ring_head);
	h = head > CT_TRAIL_RING ? head - CT_TRAIL_RING : 0;
	TEST_ASSERT(head, "the guest kept no samples");
	from = max(out_tsc, tr->ring[h % CT_TRAIL_RING].tsc - off);
	for (; h < head; h++) {
		t = tr->ring[h % CT_TRAIL_RING].tsc - off;
		if ((__s64)(t - out_tsc) > 0 && (__s64)(in_tsc - t) > 0)
			inside++;
	}
	ksft_print_msg("kexec: %llu guest samples (one per %d ms) strictly inside the kexec\n",
		       (unsigned long long)inside, CT_KEXEC_SAMPLE_MS);
	TEST_ASSERT((__s64)(in_tsc - from) > 0 &&
		    inside * CT_KEXEC_SAMPLE_MS * 2 >= (in_tsc - from) / khz,
		    "%llu samples inside the last %llu ms of the kexec", (unsigned long long)inside,
		    (unsigned long long)((__s64)(in_tsc - from) > 0 ? (in_tsc - from) / khz : 0));
	TEST_ASSERT((in_tsc - out_tsc) / khz > 2 * CT_KEXEC_MAX_GAP_MS,
		    "the handover took %llu ms: too short to show anything",
		    (unsigned long long)((in_tsc - out_tsc) / khz));
	return tr;
}

/*
 * Stage 2: the guest ran through the kexec.  Its iterations, in host TSC
 * (the guest's minus its TSC offset), began before the outgoing kernel
 * started the kexec and go on after this kernel started, with no gap
 * above CT_KEXEC_MAX_GAP_MS; the CPU is still parked.
 */
static void test_kexec_stage2(void)
{
	struct ct_orphan *o = calloc(1, sizeof(*o));
	struct liveupdate_session_finish finish = { .size = sizeof(finish) };
	struct kvm_caretaker_vcpu_status vs;
	struct ct_kexec_meta *m;
	int session, meta;
	__u32 i;

	TEST_ASSERT(o, "calloc");
	session = ct_luo_session(CT_LUO_KEXEC_SESSION, true);
	/*
	 * Nothing retrieved yet: finishing would free the memfds' pages the
	 * guest runs on, and the caretaker does not let it happen.
	 */
	TEST_ASSERT(ioctl(session, LIVEUPDATE_SESSION_FINISH, &finish) == -1 && errno == EBUSY,
		    "finishing the session before any retrieve: errno %d, expected EBUSY", errno);
	meta = ct_luo_retrieve(session, CT_LUO_TOKEN_META);
	TEST_ASSERT(meta >= 0, "retrieve the meta memfd: %s", strerror(errno));
	m = mmap(NULL, sizeof(*m), PROT_READ, MAP_SHARED, meta, 0);
	TEST_ASSERT(m != MAP_FAILED && m->magic == CT_KEXEC_MAGIC, "the meta memfd");
	o->h = m->h;
	for (i = 0; i < o->h.nr_slots; i++) {
		o->memfds[i] = ct_luo_retrieve(session, CT_LUO_TOKEN_MEMFD + i);
		TEST_ASSERT(o->memfds[i] >= 0, "retrieve memfd %u: %s", i, strerror(errno));
		/* The guest runs on it: it stays in place until finish. */
		TEST_ASSERT(ftruncate(o->memfds[i], 0) == -1 && errno == EPERM,
			    "truncating retrieved memfd %u before finish: errno %d, expected EPERM",
			    i, errno);
	}
	ct_retrieve_orphan(o, session);
	vs = ct_vcpu_status(o->ct_fd, 0);
	ksft_print_msg("kexec: runtime since DETACH: %llu ms, %llu exits, %llu IRQs, %llu NMIs\n",
		       (unsigned long long)vs.detached_ns / 1000000,
		       (unsigned long long)vs.exits,
		       (unsigned long long)vs.host_interrupts, (unsigned long long)vs.nmis);

	ct_kexec_check_trail(o, m);

	ct_vmm_b(o, vmm_b_kexec);
	ct_expect_status(o->ct_fd, KVM_CARETAKER_STATE_ATTACHED, 1);
	TEST_ASSERT(ct_cpu_online(ct_cpus[0]) == 1, "CPU %u is not back online", ct_cpus[0]);
	TEST_ASSERT(!ioctl(session, LIVEUPDATE_SESSION_FINISH, &finish),
		    "finish the session: %s", strerror(errno));
	ksft_print_msg("kexec: adopted by VMM B in the new kernel, ATTACH stall %llu us\n",
		       (unsigned long long)o->fig->attach_stall_ns / 1000);
	ksft_print_msg("kexec: +%llu iterations in %llu ms under VMM B, CPU %u back online\n",
		       (unsigned long long)o->fig->beats,
		       (unsigned long long)o->fig->ns / 1000000, ct_cpus[0]);
	close(session);
	close(meta);
	ct_orphan_close(o);
}

/*
 * ---- make bench: a live update across a kexec, beside pausing the VM across it ----
 *
 * One boot of the test host runs 2 N + 1 stages, kexec after kexec
 * (scripts/run-kexec-bench.sh), and each stage runs kexec_bench: it
 * finishes the run the previous kernel handed over, then starts the next,
 * the two kinds alternating.  A caretaker run is bench's caretaker run
 * (warmup, quiet, PREPARE, DETACH, VMM A exits) with a kexec in its
 * absence: the orphan and its memfds go into a LUO session, and in the
 * next kernel VMM B retrieves them and ATTACHes.  A pause run is the
 * baseline: VMM A pauses the vCPU, saves its state into a memfd that goes
 * into the session with the guest's, and exits; in the next kernel VMM B
 * restores the VM, at the same point as ATTACH.  The run's log (host
 * TSC) and the guest's trail (guest TSC) are in memfds that cross the
 * kexec, and the TSC runs on through it.
 *
 * Output, per run: a CT-KXBENCH line with the longest gap the guest saw
 * from the start of the update (PREPARE, or the pause) to ATTACH (or the
 * restore), the kexec's own gap (the outgoing kernel's stamp to the
 * incoming kernel's start) and the guest's rate without a VMM as a share
 * of its rate in quiet.  scripts/perf-report.py sums them up.
 */
#define CT_KXB_SESSION		"caretaker-kexec-bench"
#define CT_KXB_MAGIC		0x6b786265ULL

/* What a stage hands the next one, in a memfd of the session. */
struct ct_kxb_meta {
	__u64 magic;
	__u32 run;
	__u32 classic;			/* a pause run */
	__u64 held_tsc;			/* host TSC as the stage handed over */
	struct ct_handover h;
	struct ct_run_log log;
};

static void ct_kxb_start(int run, bool classic)
{
	size_t trail = CT_TRAIL_PAGES * getpagesize();
	struct ct_orphan *o = calloc(1, sizeof(*o));
	struct ct_kxb_meta *m;
	struct ct_trail *tr;
	int sock, session, meta;
	pid_t pid;
	__u32 i;

	TEST_ASSERT(o, "calloc");
	m = ct_meta_memfd("caretaker-kxb-meta", sizeof(*m), &meta);
	m->magic = CT_KXB_MAGIC;
	m->run = run;
	m->classic = classic;

	tr = ct_bench_vmm_a_start(&m->log, classic, o, &sock, &pid);
	/* demo: the guest keeps its own samples, they cross the kexec. */
	if (ct_opts.demo)
		WRITE_ONCE(tr->ring_every, (__u64)CT_DEMO_SAMPLE_MS * m->log.tsc_khz);
	ct_bench_vmm_a_end(&m->log, tr, o, sock, pid);
	m->h = o->h;

	session = ct_luo_session(CT_KXB_SESSION, false);
	for (i = 0; i < o->h.nr_slots; i++)
		TEST_ASSERT(!ct_luo_preserve(session, o->memfds[i], CT_LUO_TOKEN_MEMFD + i),
			    "preserve memfd %u: %s", i, strerror(errno));
	if (!classic)
		TEST_ASSERT(!ct_luo_preserve(session, o->ct_fd, CT_LUO_TOKEN_CT),
			    "preserve the caretaker fd: %s", strerror(errno));
	TEST_ASSERT(!ct_luo_preserve(session, meta, CT_LUO_TOKEN_META),
		    "preserve the meta memfd: %s", strerror(errno));
	ct_emit(true, "CT-KXBENCH start run=%d kind=%s", run, classic ? "pause" : "caretaker");
	m->held_tsc = rdtsc();
	ct_hold_forever();
	munmap(tr, trail);
	munmap(m, sizeof(*m));
	close(session);
	close(meta);
	if (!classic)
		close(o->ct_fd);
	for (i = 0; i < o->h.nr_slots; i++)
		close(o->memfds[i]);
	free(o);
}

/* The epoch the guest counted into at host TSC @t. */
static int ct_epoch_at(const struct ct_run_log *log, __u64 t)
{
	int e, at = CT_EP_WARMUP;

	for (e = 0; e < CT_NR_EPOCHS; e++)
		if (log->epoch_tsc[e] && log->epoch_tsc[e] <= t)
			at = e;
	return at;
}

/*
 * make demo, across a kexec: the run in demo's format (perf-report.py
 * draws it like a VMM restart), from the guest's own samples, which
 * crossed the kexec in its memory, and the run's log; the kexec is an
 * event from the outgoing kernel's stamp to the incoming kernel's start.
 */
static void ct_kxb_demo(struct ct_kxb_meta *m, struct ct_trail *tr, __u64 out_tsc,
			__u64 in_tsc)
{
	struct ct_monitor *mon = calloc(1, sizeof(*mon));
	const char *kind = m->classic ? "classic" : "caretaker";
	struct ct_run_log *log = &m->log;
	struct ct_run_result r;
	__u64 head, h, t;
	__u32 i;

	TEST_ASSERT(mon, "calloc");
	mon->tr = tr;
	mon->log = log;
	mon->kind = kind;
	mon->run = m->run;
	ct_emit(true, "CT-DEMO run-start run=%u kind=%s absence_ms=0", m->run, kind);
	for (i = 0; i < log->nr_events; i++)
		ct_emit(true, "CT-DEMO event run=%u kind=%s name=%s t_ms=%.1f dur_ms=%.3f",
			m->run, kind, ct_event_names[log->ev[i].what],
			ct_ms(log, log->ev[i].tsc - log->t0),
			ct_ms(log, log->ev[i].end - log->ev[i].tsc));
	ct_emit(true, "CT-DEMO event run=%u kind=%s name=KEXEC t_ms=%.1f dur_ms=%.3f",
		m->run, kind, ct_ms(log, out_tsc - log->t0), ct_ms(log, in_tsc - out_tsc));
	head = READ_ONCE(tr->ring_head);
	for (h = head > CT_TRAIL_RING ? head - CT_TRAIL_RING : 0; h < head; h++) {
		t = tr->ring[h % CT_TRAIL_RING].tsc - log->tsc_offset[0];
		ct_emit(true, "CT-DEMO sample run=%u kind=%s t_ms=%.0f counter=%llu epoch=%s",
			m->run, kind, ct_ms(log, t - log->t0),
			(unsigned long long)tr->ring[h % CT_TRAIL_RING].counter,
			ct_epoch_names[ct_epoch_at(log, t)]);
	}
	ct_report_run(mon, &r);
	free(mon);
}

static void ct_kxb_finish(void)
{
	struct liveupdate_session_finish finish = { .size = sizeof(finish) };
	size_t trail = CT_TRAIL_PAGES * getpagesize();
	struct ct_orphan *o = calloc(1, sizeof(*o));
	__u64 out_tsc, in_tsc, max_gap = 0;
	double quiet_rate, progress;
	struct ct_kxb_meta *m;
	struct ct_run_log *log;
	struct ct_trail *tr;
	int session, meta, e;
	bool classic, stamps;
	__u32 i;

	TEST_ASSERT(o, "calloc");
	session = ct_luo_session(CT_KXB_SESSION, true);
	meta = ct_luo_retrieve(session, CT_LUO_TOKEN_META);
	TEST_ASSERT(meta >= 0, "retrieve the meta memfd: %s", strerror(errno));
	m = mmap(NULL, sizeof(*m), PROT_READ | PROT_WRITE, MAP_SHARED, meta, 0);
	TEST_ASSERT(m != MAP_FAILED && m->magic == CT_KXB_MAGIC, "the meta memfd");
	classic = m->classic;
	log = &m->log;
	o->h = m->h;
	/*
	 * The kexec: the CPU park handover's stamps, if a CPU was handed
	 * over; else (a pause run) from the previous stage's hand-over to
	 * this kernel's start, CLOCK_BOOTTIME ago.
	 */
	stamps = ct_kmsg_stamps(&out_tsc, &in_tsc);
	if (!stamps) {
		TEST_ASSERT(ct_kmsg_start(&in_tsc), "this kernel logged no start stamp");
		out_tsc = m->held_tsc;
	}
	for (i = 0; i < o->h.nr_slots; i++) {
		o->memfds[i] = ct_luo_retrieve(session, CT_LUO_TOKEN_MEMFD + i);
		TEST_ASSERT(o->memfds[i] >= 0, "retrieve memfd %u: %s", i, strerror(errno));
	}
	o->ct_fd = -1;
	if (!classic) {
		o->ct_fd = ct_luo_retrieve(session, CT_LUO_TOKEN_CT);
		TEST_ASSERT(o->ct_fd >= 0, "retrieve the caretaker fd: %s", strerror(errno));
		ct_expect_status(o->ct_fd, KVM_CARETAKER_STATE_DETACHED, 1);
	}
	o->eventfd = -1;
	ct_orphan_map(o);
	o->log = log;
	tr = ct_map_guest(o, o->h.beat_gpa, trail);
	if (!classic)
		ct_epoch(log, tr, CT_EP_BUILD);
	ct_event(log, CT_EV_VMM_START, rdtsc());
	ct_tsc_unscaled = true;
	ct_vmm_b(o, classic ? vmm_b_bench_restore : vmm_b_bench_adopt);
	TEST_ASSERT(!ioctl(session, LIVEUPDATE_SESSION_FINISH, &finish),
		    "finish the session: %s", strerror(errno));

	/* From the start of the update (PREPARE, or the pause) until VMM B runs it. */
	for (e = classic ? CT_EP_ABSENCE : CT_EP_PREPARE; e <= CT_EP_ATTACH; e++)
		if (log->epoch_tsc[e])
			max_gap = max(max_gap, tr->ep[e].top[0].len);
	quiet_rate = ct_rate(log, tr, CT_EP_QUIET);
	progress = quiet_rate ? 100 * ct_rate(log, tr, CT_EP_ABSENCE) / quiet_rate : 0;
	ct_emit(true,
		"CT-KXBENCH run run=%u kind=%s stall_ms=%.3f kexec_ms=%.1f kexec_from=%s absence_ms=%.1f progress_pct=%.1f noise_ms=%.3f kernel_detach_stall_us=%.1f kernel_attach_stall_us=%.1f tsc_khz=%u",
		m->run, classic ? "pause" : "caretaker", ct_ms(log, max_gap),
		ct_ms(log, in_tsc - out_tsc), stamps ? "stamps" : "handover",
		ct_ms(log, ct_epoch_end(log, CT_EP_ABSENCE) - log->epoch_tsc[CT_EP_ABSENCE]),
		progress, ct_ms(log, tr->ep[CT_EP_QUIET].top[0].len),
		log->kernel_stall_ns[0] / 1e3, log->kernel_stall_ns[1] / 1e3, log->tsc_khz);
	/* Where it was: each epoch's longest gap. */
	for (e = CT_EP_PREPARE; e <= CT_EP_AFTER; e++)
		if (log->epoch_tsc[e])
			ct_emit(true,
				"CT-KXBENCH epoch run=%u kind=%s epoch=%s max_gap_ms=%.3f ms=%.1f gap_end_ms=%.1f start_ms=%.1f",
				m->run, classic ? "pause" : "caretaker", ct_epoch_names[e],
				ct_ms(log, tr->ep[e].top[0].len),
				ct_ms(log, ct_epoch_end(log, e) - log->epoch_tsc[e]),
				ct_ms(log, tr->ep[e].top[0].end - log->tsc_offset[0] - log->t0),
				ct_ms(log, log->epoch_tsc[e] - log->t0));
	for (e = 0; e < (int)log->nr_events; e++)
		ct_emit(true, "CT-KXBENCH event run=%u name=%s t_ms=%.1f dur_ms=%.1f", m->run,
			ct_event_names[log->ev[e].what], ct_ms(log, log->ev[e].tsc - log->t0),
			ct_ms(log, log->ev[e].end - log->ev[e].tsc));
	if (ct_opts.demo)
		ct_kxb_demo(m, tr, out_tsc, in_tsc);
	munmap(tr, trail);
	munmap(m, sizeof(*m));
	close(session);
	close(meta);
	ct_orphan_close(o);
}

/*
 * One stage of the kexec bench: --stage K of --stages S.  Stage 1 only
 * starts a run, stage S only finishes one; runs alternate, caretaker
 * first.
 */
static void test_kexec_bench(void)
{
	int k = ct_opts.stage, n = ct_opts.stages;

	if (!k || k > n || n < 2)
		TEST_FAIL("kexec_bench needs --stage K --stages S, 1 <= K <= S, S >= 2");
	ct_opts.absence_ms = 1000;	/* the quiet epoch before each update */
	ct_opts.after_ms = 500;
	if (k == 1 && ct_opts.demo)
		ct_emit(true, "CT-DEMO config mode=demo absence_ms=0 kexec=1 runs=%d", n - 1);
	if (k > 1)
		ct_kxb_finish();
	if (k < n)
		ct_kxb_start(k, !(k % 2));
	if (k == n && ct_opts.demo)
		ct_emit(true, "CT-DEMO done runs=%d", n - 1);
}

/* make demo across a kexec: kexec_bench's runs, drawn as demo draws a restart. */
static void test_kexec_demo(void)
{
	ct_opts.demo = true;
	test_kexec_bench();
}

/* Stage 1 of the finish test: as kexec_stage1, the trail in a memslot of its own. */
static void test_kexec_finish_stage1(void)
{
	ct_trail_own_slot = true;
	test_kexec_stage1();
}

/* Touch @mb MiB of fresh memory with a pattern, then give it back. */
static void ct_memory_pressure(size_t mb)
{
	size_t len = mb << 20;
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	TEST_ASSERT(p != MAP_FAILED, "mmap %zu MiB", mb);
	memset(p, 0xa5, len);
	munmap(p, len);
}

/* MemAvailable, in MiB. */
static size_t ct_mem_available_mb(void)
{
	char line[128];
	size_t kb = 0;
	FILE *f = fopen("/proc/meminfo", "r");

	TEST_ASSERT(f, "open /proc/meminfo");
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %zu kB", &kb) == 1)
			break;
	fclose(f);
	return kb >> 10;
}

/*
 * Stage 2 of the finish test: the caretaker fd and only the trail's memfd
 * are retrieved, and the session finishes, so LUO's memfd handler frees
 * what it preserved of the other memfd, the guest's code, stack and page
 * tables.  The orphan holds those pages itself: after most of the free
 * memory was handed out and written, the guest still runs.  Closing the
 * caretaker fd then ends the guest and gives the CPU back.
 */
static void test_kexec_finish_stage2(void)
{
	struct liveupdate_session_finish finish = { .size = sizeof(finish) };
	struct ct_orphan *o = calloc(1, sizeof(*o));
	struct kvm_caretaker_vcpu_status vs;
	struct ct_kexec_meta *m;
	size_t mb;
	int session, meta;
	__u32 i, k;

	TEST_ASSERT(o, "calloc");
	session = ct_luo_session(CT_LUO_KEXEC_SESSION, true);
	meta = ct_luo_retrieve(session, CT_LUO_TOKEN_META);
	TEST_ASSERT(meta >= 0, "retrieve the meta memfd: %s", strerror(errno));
	m = mmap(NULL, sizeof(*m), PROT_READ, MAP_SHARED, meta, 0);
	TEST_ASSERT(m != MAP_FAILED && m->magic == CT_KEXEC_MAGIC, "the meta memfd");
	o->h = m->h;
	k = ct_gpa_slot(&o->h, o->h.beat_gpa);
	TEST_ASSERT(o->h.nr_slots > 1 && o->h.slots[k].slot == CT_TRAIL_SLOT,
		    "the trail is not in a memslot of its own");
	for (i = 0; i < o->h.nr_slots; i++)
		o->memfds[i] = -1;
	ct_retrieve_orphan(o, session);
	o->memfds[k] = ct_luo_retrieve(session, CT_LUO_TOKEN_MEMFD + k);
	TEST_ASSERT(o->memfds[k] >= 0, "retrieve the trail's memfd: %s", strerror(errno));
	ct_kexec_check_trail(o, m);

	TEST_ASSERT(!ioctl(session, LIVEUPDATE_SESSION_FINISH, &finish),
		    "finish the session with a memfd not retrieved: %s", strerror(errno));
	ct_expect_beats(o->beats, 1, CT_BEATS_ALIVE, "after the finish");
	mb = ct_mem_available_mb() * 3 / 4;
	ksft_print_msg("kexec: session finished, %u of %u memfds retrieved; writing %zu MiB\n",
		       1, o->h.nr_slots, mb);
	ct_memory_pressure(mb);
	vs = ct_vcpu_status(o->ct_fd, 0);
	ksft_print_msg("kexec: after the pressure: state %u, %llu exits, exit %#llx at %#llx\n",
		       vs.state, (unsigned long long)vs.exits,
		       (unsigned long long)vs.blocked_exit_code,
		       (unsigned long long)vs.blocked_rip);
	ct_expect_beats(o->beats, 1, CT_BEATS_ALIVE, "after the finish and the memory pressure");
	ct_expect_status(o->ct_fd, KVM_CARETAKER_STATE_DETACHED, 1);
	TEST_ASSERT(vs.state == KVM_CARETAKER_VCPU_RUNNING,
		    "the guest is in state %u after the finish (exit %#llx)", vs.state,
		    (unsigned long long)vs.blocked_exit_code);
	ksft_print_msg("kexec: guest running after the finish: %llu exits, %llu ms detached\n",
		       (unsigned long long)vs.exits,
		       (unsigned long long)vs.detached_ns / 1000000);
	close(session);
	close(meta);
	ct_orphan_close(o);
	TEST_ASSERT(ct_cpu_online(ct_cpus[0]) == 1, "CPU %u is not back online", ct_cpus[0]);
}

static const struct {
	const char *name;
	void (*fn)(void);
	bool on_request;	/* only when named: measurements, not tests */
} cases[] = {
	{ "heartbeat", test_heartbeat },
	{ "blocking", test_blocking },
	{ "cpuid_in_gap", test_cpuid_in_gap },
	{ "timer_oneshot", test_timer_oneshot },
	{ "timer_periodic", test_timer_periodic },
	{ "timer_tscdeadline", test_timer_tscdeadline },
	{ "apic_in_gap", test_apic_in_gap },
	{ "two_vcpus", test_two_vcpus },
	{ "cancel", test_cancel },
	{ "triple_fault", test_triple_fault },
	{ "nmi_in_gap", test_nmi_in_gap },
	{ "suspend_refused", test_suspend_refused },
	{ "smt_refused", test_smt_refused },
	{ "irqfd_in_gap", test_irqfd_in_gap },
	{ "close_without_attach", test_close_without_attach },
	{ "undo_prepare", test_undo_prepare },
	{ "memfd_frozen", test_memfd_frozen },
	{ "attach_mismatch", test_attach_mismatch },
	{ "double_detach", test_double_detach },
	{ "detach_vcpu_added", test_detach_vcpu_added },
	{ "attach_prepare", test_attach_prepare },
	{ "cpu_taken", test_cpu_taken },
	{ "rmmod_refused", test_rmmod_refused },
	{ "luo_cancel", test_luo_cancel },
	{ "luo_kexec_refused", test_luo_kexec_refused },
	{ "kexec_stage1", test_kexec_stage1, true },
	{ "kexec_stage2", test_kexec_stage2, true },
	{ "kexec_finish_stage1", test_kexec_finish_stage1, true },
	{ "kexec_finish_stage2", test_kexec_finish_stage2, true },
	{ "kexec_bench", test_kexec_bench, true },
	{ "kexec_demo", test_kexec_demo, true },
	{ "bench", test_bench, true },
	{ "demo", test_demo, true },
};

static void ct_usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [CASE] [--absence-ms N] [--after-ms N] [--runs N] [--live PATH] [--stage K --stages S]\n",
		prog);
	exit(KSFT_FAIL);
}

static int ct_opt_int(const char *prog, const char *v, int lo, int hi)
{
	char *end;
	long n = strtol(v, &end, 10);

	if (*v == 0 || *end || n < lo || n > hi) {
		fprintf(stderr, "%s: %s is not a number in %d..%d\n", prog, v, lo, hi);
		ct_usage(prog);
	}
	return n;
}

/* The options of bench and demo, after the case's name. */
static void ct_parse_opts(int argc, char *argv[])
{
	const char *path = NULL;
	int i;

	for (i = 2; i < argc; i += 2) {
		if (i + 1 >= argc)
			ct_usage(argv[0]);
		if (!strcmp(argv[i], "--absence-ms"))
			ct_opts.absence_ms = ct_opt_int(argv[0], argv[i + 1], 100, 600000);
		else if (!strcmp(argv[i], "--after-ms"))
			ct_opts.after_ms = ct_opt_int(argv[0], argv[i + 1], 100, 60000);
		else if (!strcmp(argv[i], "--runs"))
			ct_opts.runs = ct_opt_int(argv[0], argv[i + 1], 1, CT_MAX_RUNS);
		else if (!strcmp(argv[i], "--stage"))
			ct_opts.stage = ct_opt_int(argv[0], argv[i + 1], 1, 2 * CT_MAX_RUNS + 1);
		else if (!strcmp(argv[i], "--stages"))
			ct_opts.stages = ct_opt_int(argv[0], argv[i + 1], 2, 2 * CT_MAX_RUNS + 1);
		else if (!strcmp(argv[i], "--live"))
			path = argv[i + 1];
		else
			ct_usage(argv[0]);
	}
	if (path) {
		ct_opts.live_fd = open(path, O_WRONLY | O_NOCTTY | O_APPEND);
		if (ct_opts.live_fd < 0)
			printf("# --live %s: %s; no live copy\n", path, strerror(errno));
	}
}

int main(int argc, char *argv[])
{
	struct sigaction sa = { .sa_handler = ct_kick_handler };
	int i, planned = 0;
	__u32 c, nr_cpus;

	/* With an argument, run only the case of that name. */
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		if (argc < 2)
			planned += !cases[i].on_request;
		else
			planned += !strcmp(argv[1], cases[i].name);
	}
	if (argc > 1 && !planned)
		ct_usage(argv[0]);
	ct_parse_opts(argc, argv);
	ksft_print_header();
	TEST_ASSERT(!system("modprobe caretaker"), "modprobe caretaker");
	if (!(kvm_check_cap(KVM_CAP_CARETAKER) & KVM_CARETAKER_FEAT_VMM_RESTART))
		ksft_exit_skip("caretaker.ko does not claim KVM_CARETAKER_FEAT_VMM_RESTART\n");
	/*
	 * The kexec stages use one vCPU (their test host has one CPU to
	 * spare), and after the kexec its CPU is parked, as it must be.
	 */
	nr_cpus = CT_MAX_VCPUS;
	if (argc > 1 && !strncmp(argv[1], "kexec_", 6))
		nr_cpus = strstr(argv[1], "stage1") ? 1 : 0;
	for (c = 0; c < nr_cpus; c++)
		if (ct_cpu_online(ct_cpus[c]) != 1)
			ksft_exit_skip("CPU %u is not an online hotpluggable CPU\n",
				       ct_cpus[c]);
	ksft_set_plan(planned);
	/* No SA_RESTART: the kick must end KVM_RUN with EINTR. */
	sigemptyset(&sa.sa_mask);
	TEST_ASSERT(!sigaction(SIGUSR1, &sa, NULL), "sigaction");

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		if (argc < 2 && cases[i].on_request)
			continue;
		if (argc > 1 && strcmp(argv[1], cases[i].name))
			continue;
		ct_run_case(cases[i].name, cases[i].fn);
	}
	ksft_finished();
}
