// SPDX-License-Identifier: GPL-2.0-only
/*
 * KUnit tests for the caretaker's encodings between KVM's uAPI state and
 * the VMCB, and for the runtime's classification of exits.
 */
#include <kunit/test.h>
#include <asm/msr-index.h>

#include "rt_abi.h"
#include "svm_encode.h"

/* A segment goes into the VMCB and comes back as KVM reads it. */
static void caretaker_svm_segment_test(struct kunit *test)
{
	static const struct kvm_segment cs64 = {
		.base = 0, .limit = 0xffffffff, .selector = 0x8, .type = 0xb,
		.present = 1, .dpl = 0, .db = 0, .s = 1, .l = 1, .g = 1,
	};
	static const struct kvm_segment ds = {
		.base = 0x1000, .limit = 0xfffff, .selector = 0x10, .type = 0x3,
		.present = 1, .dpl = 3, .db = 1, .s = 1, .g = 0,
	};
	static const struct kvm_segment tr = {
		.base = 0xfffffe0000001000ULL, .limit = 0x67, .selector = 0x40,
		.type = 0xb, .present = 1, .s = 0,
	};
	struct kvm_segment unusable = { .selector = 0, .unusable = 1, .type = 3 };
	struct kvm_segment back;
	struct vmcb_seg v;

	ct_seg_to_vmcb(&v, &cs64);
	KUNIT_EXPECT_EQ(test, v.attrib, 0xa9b);
	ct_seg_from_vmcb(&back, &v, VCPU_SREG_CS);
	KUNIT_EXPECT_EQ(test, back.base, cs64.base);
	KUNIT_EXPECT_EQ(test, back.limit, cs64.limit);
	KUNIT_EXPECT_EQ(test, back.type, cs64.type);
	KUNIT_EXPECT_EQ(test, back.l, 1);
	KUNIT_EXPECT_EQ(test, back.g, 1);
	KUNIT_EXPECT_EQ(test, back.unusable, 0);

	ct_seg_to_vmcb(&v, &ds);
	ct_seg_from_vmcb(&back, &v, VCPU_SREG_DS);
	KUNIT_EXPECT_EQ(test, back.dpl, 3);
	KUNIT_EXPECT_EQ(test, back.db, 1);
	KUNIT_EXPECT_EQ(test, back.type, 0x3);	/* accessed kept */
	KUNIT_EXPECT_EQ(test, back.g, 0);	/* limit below 1 MiB */

	ct_seg_to_vmcb(&v, &tr);
	KUNIT_EXPECT_EQ(test, v.base, tr.base);
	ct_seg_from_vmcb(&back, &v, VCPU_SREG_TR);
	KUNIT_EXPECT_EQ(test, back.type, 0xb);	/* busy, as KVM reports TR */
	KUNIT_EXPECT_EQ(test, back.s, 0);

	/* Not present in the VMCB: KVM's "unusable", and no DB for SS. */
	unusable.db = 1;
	ct_seg_to_vmcb(&v, &unusable);
	KUNIT_EXPECT_EQ(test, v.attrib & SVM_SELECTOR_P_MASK, 0);
	ct_seg_from_vmcb(&back, &v, VCPU_SREG_SS);
	KUNIT_EXPECT_EQ(test, back.unusable, 1);
	KUNIT_EXPECT_EQ(test, back.db, 0);
}

/* Two bits per MSR (read, write) in three ranges; others are left alone. */
static void caretaker_svm_msrpm_test(struct kunit *test)
{
	u8 *pm = kunit_kmalloc(test, 0x2000, GFP_KERNEL);
	unsigned int i, cleared = 0;

	KUNIT_ASSERT_NOT_NULL(test, pm);
	memset(pm, 0xff, 0x2000);
	ct_msrpm_clear(pm, MSR_LSTAR);			/* 0xc0000082 */
	KUNIT_EXPECT_EQ(test, pm[0x800 + 0x82 / 4], (u8)0xcf);
	ct_msrpm_clear(pm, MSR_IA32_SYSENTER_CS);	/* 0x174 */
	KUNIT_EXPECT_EQ(test, pm[0x174 / 4], (u8)0xfc);
	ct_msrpm_clear(pm, 0xc0010117);			/* MSR_VM_HSAVE_PA */
	KUNIT_EXPECT_EQ(test, pm[0x1000 + 0x117 / 4], (u8)0x3f);
	ct_msrpm_clear(pm, 0x40000000);			/* in no range */
	for (i = 0; i < 0x2000; i++)
		cleared += 8 - hweight8(pm[i]);
	KUNIT_EXPECT_EQ(test, cleared, 6);
}

/* What KVM had in flight at DETACH is injected on the first VMRUN. */
static void caretaker_svm_event_inj_test(struct kunit *test)
{
	struct kvm_vcpu_events ev = { };
	u32 err, inj;

	KUNIT_EXPECT_EQ(test, ct_event_inj(&ev, &err), 0);

	ev.exception.injected = 1;
	ev.exception.nr = PF_VECTOR;
	ev.exception.has_error_code = 1;
	ev.exception.error_code = 0x6;
	ev.nmi.injected = 1;		/* an exception goes first */
	inj = ct_event_inj(&ev, &err);
	KUNIT_EXPECT_EQ(test, inj, PF_VECTOR | SVM_EVTINJ_TYPE_EXEPT |
			SVM_EVTINJ_VALID | SVM_EVTINJ_VALID_ERR);
	KUNIT_EXPECT_EQ(test, err, 0x6);

	ev.exception.injected = 0;
	KUNIT_EXPECT_EQ(test, ct_event_inj(&ev, &err),
			NMI_VECTOR | SVM_EVTINJ_TYPE_NMI | SVM_EVTINJ_VALID);

	ev.nmi.injected = 0;
	ev.interrupt.injected = 1;
	ev.interrupt.nr = 0x80;
	ev.interrupt.soft = 1;
	KUNIT_EXPECT_EQ(test, ct_event_inj(&ev, &err),
			0x80 | SVM_EVTINJ_TYPE_SOFT | SVM_EVTINJ_VALID);
}

/* An event an exit interrupted goes back to KVM as injected. */
static void caretaker_svm_store_events_test(struct kunit *test)
{
	struct kvm_vcpu_events ev = { };

	ev.exception.pending = 1;
	ct_store_events(&ev, 0, 0);
	KUNIT_EXPECT_EQ(test, ev.exception.pending, 0);
	KUNIT_EXPECT_EQ(test, ev.exception.injected, 0);

	ct_store_events(&ev, GP_VECTOR | SVM_EXITINTINFO_TYPE_EXEPT |
			SVM_EXITINTINFO_VALID | SVM_EXITINTINFO_VALID_ERR, 0x10);
	KUNIT_EXPECT_EQ(test, ev.exception.injected, 1);
	KUNIT_EXPECT_EQ(test, ev.exception.nr, GP_VECTOR);
	KUNIT_EXPECT_EQ(test, ev.exception.has_error_code, 1);
	KUNIT_EXPECT_EQ(test, ev.exception.error_code, 0x10);

	ct_store_events(&ev, 0x31 | SVM_EXITINTINFO_TYPE_INTR | SVM_EXITINTINFO_VALID, 0);
	KUNIT_EXPECT_EQ(test, ev.exception.injected, 0);
	KUNIT_EXPECT_EQ(test, ev.interrupt.injected, 1);
	KUNIT_EXPECT_EQ(test, ev.interrupt.nr, 0x31);
	KUNIT_EXPECT_EQ(test, ev.interrupt.soft, 0);

	ct_store_events(&ev, SVM_EXITINTINFO_TYPE_NMI | SVM_EXITINTINFO_VALID | 2, 0);
	KUNIT_EXPECT_EQ(test, ev.interrupt.injected, 0);
	KUNIT_EXPECT_EQ(test, ev.nmi.injected, 1);
}

/* The runtime's exit kinds, as GET_VCPU_STATUS reports them. */
static void caretaker_svm_exit_kind_test(struct kunit *test)
{
	KUNIT_EXPECT_EQ(test, ctrt_exit_kind(SVM_EXIT_WRITE_CR3), KVM_CARETAKER_EXIT_CR_DR);
	KUNIT_EXPECT_EQ(test, ctrt_exit_kind(SVM_EXIT_EXCP_BASE + MC_VECTOR),
			KVM_CARETAKER_EXIT_EXCEPTION);
	KUNIT_EXPECT_EQ(test, ctrt_exit_kind(SVM_EXIT_INTR), KVM_CARETAKER_EXIT_INTR);
	KUNIT_EXPECT_EQ(test, ctrt_exit_kind(SVM_EXIT_NMI), KVM_CARETAKER_EXIT_NMI);
	KUNIT_EXPECT_EQ(test, ctrt_exit_kind(SVM_EXIT_CPUID), KVM_CARETAKER_EXIT_CPUID);
	KUNIT_EXPECT_EQ(test, ctrt_exit_kind(SVM_EXIT_HLT), KVM_CARETAKER_EXIT_HLT);
	KUNIT_EXPECT_EQ(test, ctrt_exit_kind(SVM_EXIT_IOIO), KVM_CARETAKER_EXIT_IO);
	KUNIT_EXPECT_EQ(test, ctrt_exit_kind(SVM_EXIT_MSR), KVM_CARETAKER_EXIT_MSR);
	KUNIT_EXPECT_EQ(test, ctrt_exit_kind(SVM_EXIT_SHUTDOWN), KVM_CARETAKER_EXIT_SHUTDOWN);
	KUNIT_EXPECT_EQ(test, ctrt_exit_kind(SVM_EXIT_NPF), KVM_CARETAKER_EXIT_NPF);
	KUNIT_EXPECT_EQ(test, ctrt_exit_kind(SVM_EXIT_VMMCALL), KVM_CARETAKER_EXIT_SVM_INSN);
	KUNIT_EXPECT_EQ(test, ctrt_exit_kind(SVM_EXIT_ERR), KVM_CARETAKER_EXIT_INVALID);
	KUNIT_EXPECT_EQ(test, ctrt_exit_kind(SVM_EXIT_XSETBV), KVM_CARETAKER_EXIT_XSETBV);
	KUNIT_EXPECT_EQ(test, ctrt_exit_kind(SVM_EXIT_PAUSE), KVM_CARETAKER_EXIT_PAUSE);
	KUNIT_EXPECT_EQ(test, ctrt_exit_kind(SVM_EXIT_RDTSCP), KVM_CARETAKER_EXIT_OTHER);
	KUNIT_EXPECT_LT(test, KVM_CARETAKER_EXIT_INVALID, KVM_CARETAKER_NR_EXIT_KINDS);
}

static struct kunit_case caretaker_svm_test_cases[] = {
	KUNIT_CASE(caretaker_svm_segment_test),
	KUNIT_CASE(caretaker_svm_msrpm_test),
	KUNIT_CASE(caretaker_svm_event_inj_test),
	KUNIT_CASE(caretaker_svm_store_events_test),
	KUNIT_CASE(caretaker_svm_exit_kind_test),
	{}
};

static struct kunit_suite caretaker_svm_test_suite = {
	.name = "caretaker_svm",
	.test_cases = caretaker_svm_test_cases,
};

kunit_test_suite(caretaker_svm_test_suite);
