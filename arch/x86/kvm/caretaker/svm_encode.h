/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Pure encodings between KVM's uAPI state and the VMCB: saved MSRs,
 * segments, event injection, the MSR permission map.  Used by svm_state.c, KUnit-tested
 * by svm_state_test.c.
 */
#ifndef __CARETAKER_SVM_ENCODE_H
#define __CARETAKER_SVM_ENCODE_H

#include <linux/kvm.h>
#include <linux/kvm_host.h>
#include <asm/svm.h>

/* An MSR of a vCPU's saved state, or NULL if KVM did not save it. */
static inline struct kvm_msr_entry *ct_find_msr(const struct kvm_x86_vcpu_state *s,
						u32 index)
{
	u32 i;

	for (i = 0; i < s->nmsrs; i++)
		if (s->msrs[i].index == index)
			return &s->msrs[i];
	return NULL;
}

static inline u64 ct_msr(const struct kvm_x86_vcpu_state *s, u32 index, u64 dflt)
{
	struct kvm_msr_entry *e = ct_find_msr(s, index);

	return e ? e->data : dflt;
}

/* Let the guest access @msr directly (both directions). */
static inline void ct_msrpm_clear(u8 *msrpm, u32 msr)
{
	u32 base, off;

	if (msr <= 0x1fff)
		base = 0, off = msr;
	else if (msr - 0xc0000000 <= 0x1fff)
		base = 0x800, off = msr - 0xc0000000;
	else if (msr - 0xc0010000 <= 0x1fff)
		base = 0x1000, off = msr - 0xc0010000;
	else
		return;
	msrpm[base + off / 4] &= ~(3 << (2 * (off % 4)));
}

static inline void ct_seg_to_vmcb(struct vmcb_seg *d, const struct kvm_segment *v)
{
	d->base = v->base;
	d->limit = v->limit;
	d->selector = v->selector;
	d->attrib = (v->type & SVM_SELECTOR_TYPE_MASK) |
		    (v->s & 1) << SVM_SELECTOR_S_SHIFT |
		    (v->dpl & 3) << SVM_SELECTOR_DPL_SHIFT |
		    ((v->present & 1) && !v->unusable) << SVM_SELECTOR_P_SHIFT |
		    (v->avl & 1) << SVM_SELECTOR_AVL_SHIFT |
		    (v->l & 1) << SVM_SELECTOR_L_SHIFT |
		    (v->db & 1) << SVM_SELECTOR_DB_SHIFT |
		    (v->g & 1) << SVM_SELECTOR_G_SHIFT;
}

/* As svm_get_segment() reads a VMCB segment. */
static inline void ct_seg_from_vmcb(struct kvm_segment *v, const struct vmcb_seg *d, int seg)
{
	v->base = d->base;
	v->limit = d->limit;
	v->selector = d->selector;
	v->type = d->attrib & SVM_SELECTOR_TYPE_MASK;
	v->s = (d->attrib >> SVM_SELECTOR_S_SHIFT) & 1;
	v->dpl = (d->attrib >> SVM_SELECTOR_DPL_SHIFT) & 3;
	v->present = (d->attrib >> SVM_SELECTOR_P_SHIFT) & 1;
	v->avl = (d->attrib >> SVM_SELECTOR_AVL_SHIFT) & 1;
	v->l = (d->attrib >> SVM_SELECTOR_L_SHIFT) & 1;
	v->db = (d->attrib >> SVM_SELECTOR_DB_SHIFT) & 1;
	v->g = d->limit > 0xfffff;
	v->unusable = !v->present;
	switch (seg) {
	case VCPU_SREG_TR:
		v->type |= 0x2;
		break;
	case VCPU_SREG_DS:
	case VCPU_SREG_ES:
	case VCPU_SREG_FS:
	case VCPU_SREG_GS:
		if (!v->unusable)
			v->type |= 0x1;
		break;
	case VCPU_SREG_SS:
		if (v->unusable)
			v->db = 0;
		break;
	}
}

static inline u32 ct_event_inj(const struct kvm_vcpu_events *ev, u32 *err)
{
	*err = 0;
	if (ev->exception.injected || ev->exception.pending) {
		*err = ev->exception.error_code;
		return ev->exception.nr | SVM_EVTINJ_TYPE_EXEPT | SVM_EVTINJ_VALID |
		       (ev->exception.has_error_code ? SVM_EVTINJ_VALID_ERR : 0);
	}
	if (ev->nmi.injected)
		return NMI_VECTOR | SVM_EVTINJ_TYPE_NMI | SVM_EVTINJ_VALID;
	if (ev->interrupt.injected)
		return ev->interrupt.nr | SVM_EVTINJ_VALID |
		       (ev->interrupt.soft ? SVM_EVTINJ_TYPE_SOFT : SVM_EVTINJ_TYPE_INTR);
	return 0;
}

/* An event whose delivery an exit interrupted goes back to KVM as injected. */
static inline void ct_store_events(struct kvm_vcpu_events *ev, u32 info, u32 err)
{
	u32 type = info & SVM_EXITINTINFO_TYPE_MASK;
	u8 vector = info & SVM_EXITINTINFO_VEC_MASK;

	ev->exception.injected = 0;
	ev->exception.pending = 0;
	ev->nmi.injected = 0;
	ev->interrupt.injected = 0;
	if (!(info & SVM_EXITINTINFO_VALID))
		return;
	switch (type) {
	case SVM_EXITINTINFO_TYPE_EXEPT:
		ev->exception.injected = 1;
		ev->exception.nr = vector;
		ev->exception.has_error_code = !!(info & SVM_EXITINTINFO_VALID_ERR);
		ev->exception.error_code = err;
		break;
	case SVM_EXITINTINFO_TYPE_NMI:
		ev->nmi.injected = 1;
		break;
	case SVM_EXITINTINFO_TYPE_INTR:
	case SVM_EXITINTINFO_TYPE_SOFT:
		ev->interrupt.injected = 1;
		ev->interrupt.nr = vector;
		ev->interrupt.soft = type == SVM_EXITINTINFO_TYPE_SOFT;
		break;
	}
}

#endif /* __CARETAKER_SVM_ENCODE_H */
