// SPDX-License-Identifier: GPL-2.0-only
/*
 * The orphan's memory: its memslots, pinned for as long as the runtime
 * may touch them.
 */
#include <linux/file.h>
#include <linux/kexec_handover.h>
#include <linux/kvm_host.h>
#include <linux/mm.h>
#include <linux/pagemap.h>
#include <linux/shmem_fs.h>
#include <linux/slab.h>

#include "caretaker.h"

/**
 * DOC: guest memory
 *
 * At PREPARE every memslot of address space 0 is pinned whole with
 * memfd_pin_folios(), which allocates what the guest never touched and
 * moves pages out of CMA and movable memory, so that the runtime's
 * nested page table can map every guest page in advance and nothing is
 * faulted in while no VMM exists.  The memslots are frozen from then on:
 * KVM refuses to change them (-EBUSY).  The pins are dropped, and the
 * folios marked dirty, when the orphan is adopted or released.
 *
 * Each memslot must be covered by one shared mapping of a memfd; the
 * memfd (a reference is kept) and the offset are what ATTACH compares
 * the adopting VM's memslots against.  Nothing may take a page away
 * from under a detached guest: while pinned, each memfd is frozen
 * (shmem_freeze()), so that ftruncate(), fallocate() (hole punching
 * included) and MADV_REMOVE on it fail with -EPERM.
 */

static void caretaker_mem_freeze(struct file *file, bool freeze)
{
	struct inode *inode = file_inode(file);

	inode_lock(inode);
	shmem_freeze(inode, freeze);
	inode_unlock(inode);
}

static struct caretaker_refusal caretaker_mem_pin_slot(struct caretaker_mem_slot *ms)
{
	loff_t start = ms->offset, end = start + ((loff_t)ms->npages << PAGE_SHIFT) - 1;
	unsigned long page = 0, i;
	unsigned int f;
	pgoff_t first;
	long n;

	if (!shmem_file(ms->file))
		return CARETAKER_REFUSE(-EOPNOTSUPP, "a memslot is not backed by a memfd");
	caretaker_mem_freeze(ms->file, true);
	ms->frozen = true;

	ms->folios = kvcalloc(ms->npages, sizeof(*ms->folios), GFP_KERNEL_ACCOUNT);
	ms->pfns = kvcalloc(ms->npages, sizeof(*ms->pfns), GFP_KERNEL_ACCOUNT);
	if (!ms->folios || !ms->pfns)
		return CARETAKER_REFUSE(-ENOMEM, "out of memory");

	n = memfd_pin_folios(ms->file, start, end, ms->folios, ms->npages, &first);
	if (n < 0)
		return CARETAKER_REFUSE(n, "guest memory could not be pinned");
	ms->nr_folios = n;

	for (f = 0; f < ms->nr_folios && page < ms->npages; f++) {
		struct folio *folio = ms->folios[f];

		for (i = f ? 0 : first >> PAGE_SHIFT;
		     i < folio_nr_pages(folio) && page < ms->npages; i++)
			ms->pfns[page++] = folio_pfn(folio) + i;
	}
	if (page != ms->npages)
		return CARETAKER_REFUSE(-EFAULT, "guest memory could not be pinned whole");
	return CARETAKER_OK;
}

/**
 * caretaker_mem_pin() - pin the VM's memslots for an orphan
 * @o: the orphan being prepared
 * @kvm: its VM, whose memslots the caller has frozen
 *
 * Context: process context of the VM's VMM, may sleep; kvm->slots_lock held.
 * Return: CARETAKER_OK, or a refusal; caretaker_mem_release() undoes
 * what was done either way.
 */
struct caretaker_refusal caretaker_mem_pin(struct caretaker_orphan *o, struct kvm *kvm)
{
	struct kvm_memslots *slots = __kvm_memslots(kvm, 0);
	struct caretaker_refusal r = CARETAKER_OK;
	struct kvm_memory_slot *slot;
	struct vm_area_struct *vma;
	u32 n = 0;
	int bkt;

	lockdep_assert_held(&kvm->slots_lock);
	kvm_for_each_memslot(slot, bkt, slots)
		n++;
	o->slots = kcalloc(n, sizeof(*o->slots), GFP_KERNEL_ACCOUNT);
	if (!o->slots)
		return CARETAKER_REFUSE(-ENOMEM, "out of memory");

	kvm_for_each_memslot(slot, bkt, slots) {
		struct caretaker_mem_slot *ms = &o->slots[o->nr_slots];
		unsigned long hva = slot->userspace_addr;

		if (!slot->npages)
			continue;
		mmap_read_lock(kvm->mm);
		vma = vma_lookup(kvm->mm, hva);
		if (!vma || hva + (slot->npages << PAGE_SHIFT) > vma->vm_end ||
		    !vma->vm_file || !(vma->vm_flags & VM_SHARED)) {
			mmap_read_unlock(kvm->mm);
			return CARETAKER_REFUSE(-EOPNOTSUPP,
						"a memslot is not covered by one shared memfd mapping");
		}
		ms->file = get_file(vma->vm_file);
		ms->offset = ((loff_t)vma->vm_pgoff << PAGE_SHIFT) + hva - vma->vm_start;
		mmap_read_unlock(kvm->mm);

		ms->id = slot->id;
		ms->flags = slot->flags;
		ms->base_gfn = slot->base_gfn;
		ms->npages = slot->npages;
		o->nr_slots++;
		r = caretaker_mem_pin_slot(ms);
		if (r.err)
			return r;
	}
	return r;
}

/**
 * caretaker_mem_release() - unpin the orphan's memory
 * @o: the orphan; the runtime no longer runs its guest
 *
 * Context: process context, may sleep.
 */
void caretaker_mem_release(struct caretaker_orphan *o)
{
	unsigned int f;
	u32 i;

	for (i = 0; i < o->nr_slots; i++) {
		struct caretaker_mem_slot *ms = &o->slots[i];

		/* The guest wrote to them behind the page cache's back. */
		for (f = 0; f < ms->nr_folios; f++)
			folio_mark_dirty_lock(ms->folios[f]);
		if (ms->nr_folios)
			unpin_folios(ms->folios, ms->nr_folios);
		kvfree(ms->folios);
		kvfree(ms->pfns);
		if (ms->frozen)
			caretaker_mem_freeze(ms->file, false);
		if (ms->file)
			fput(ms->file);
	}
	kfree(o->slots);
	o->slots = NULL;
	o->nr_slots = 0;
}

/**
 * caretaker_mem_hold() - an incoming orphan holds the pages its guest runs on
 * @o: the orphan, its memslots read from the previous kernel
 *
 * The pages belong to memfds LUO preserved; LUO's memfd handler frees
 * those of a memfd nobody retrieved when the session finishes.  The
 * guest must keep them: the orphan takes its own reference on each page,
 * now or when the memfd handler restores it (kho_hold_page()).
 *
 * Context: process context, may sleep.
 * Return: 0, or a negative errno; what is held stays held, the guest
 * running on it (caretaker_mem_unhold() lets go once the guest is off).
 */
int caretaker_mem_hold(struct caretaker_orphan *o)
{
	int err;
	u32 i;

	for (i = 0; i < o->nr_slots; i++) {
		struct caretaker_mem_slot *ms = &o->slots[i];

		for (; ms->nr_held < ms->npages; ms->nr_held++) {
			err = kho_hold_page(PFN_PHYS(ms->pfns[ms->nr_held]));
			if (err) {
				pr_err_ratelimited("memslot %u: cannot hold guest frame %#lx: %d\n",
						   ms->id, ms->pfns[ms->nr_held], err);
				return err;
			}
		}
	}
	return 0;
}

/**
 * caretaker_mem_unhold() - undo caretaker_mem_hold()
 * @o: the orphan; its guest no longer runs on the pages
 *
 * Context: process context, may sleep.
 */
void caretaker_mem_unhold(struct caretaker_orphan *o)
{
	u32 i;

	for (i = 0; i < o->nr_slots; i++) {
		struct caretaker_mem_slot *ms = &o->slots[i];

		for (; ms->nr_held; ms->nr_held--)
			kho_unhold_page(PFN_PHYS(ms->pfns[ms->nr_held - 1]));
	}
}

/*
 * An incoming orphan's memslot: the adopter's must be a shared mapping of
 * a memfd whose page cache holds, page by page, the very pages the
 * runtime's nested page table maps (those LUO's memfd handler kept in
 * place).  There is no file to compare: the memfd was retrieved anew.
 */
static bool caretaker_mem_same_pages(struct kvm *kvm, struct caretaker_mem_slot *ms,
				     unsigned long hva)
{
	struct vm_area_struct *vma;
	struct address_space *mapping;
	struct folio *folio;
	pgoff_t index;
	unsigned long p;
	bool same;

	mmap_read_lock(kvm->mm);
	vma = vma_lookup(kvm->mm, hva);
	same = vma && vma->vm_file && shmem_file(vma->vm_file) &&
	       (vma->vm_flags & VM_SHARED) &&
	       hva + (ms->npages << PAGE_SHIFT) <= vma->vm_end;
	if (!same) {
		mmap_read_unlock(kvm->mm);
		return false;
	}
	mapping = vma->vm_file->f_mapping;
	index = vma->vm_pgoff + ((hva - vma->vm_start) >> PAGE_SHIFT);
	for (p = 0; same && p < ms->npages; p++) {
		folio = filemap_get_folio(mapping, index + p);
		if (IS_ERR(folio)) {
			same = false;
			break;
		}
		same = folio_pfn(folio) + (index + p - folio->index) == ms->pfns[p];
		folio_put(folio);
		if (!(p % 4096))
			cond_resched();
	}
	mmap_read_unlock(kvm->mm);
	return same;
}

/**
 * caretaker_mem_check_adopter() - does a VM map the orphan's memory alike?
 * @o: the orphan
 * @kvm: the adopting VM, in its VMM's context
 *
 * Each of the orphan's memslots must exist in @kvm with the same id,
 * guest frames, size and flags, covered by one shared mapping of the
 * same memfd at the same offset, and @kvm must have no other memslot.
 *
 * Context: process context of @kvm's VMM, may sleep.
 * Return: CARETAKER_OK, or -EINVAL with the difference found.
 */
struct caretaker_refusal caretaker_mem_check_adopter(struct caretaker_orphan *o,
						     struct kvm *kvm)
{
	struct kvm_memory_slot *slot;
	struct vm_area_struct *vma;
	struct kvm_memslots *slots;
	u32 i, n = 0;
	int bkt;

	guard(mutex)(&kvm->slots_lock);
	slots = __kvm_memslots(kvm, 0);
	kvm_for_each_memslot(slot, bkt, slots)
		if (slot->npages)
			n++;
	if (n != o->nr_slots)
		return CARETAKER_REFUSE(-EINVAL, "the adopting VM has other memslots");

	for (i = 0; i < o->nr_slots; i++) {
		struct caretaker_mem_slot *ms = &o->slots[i];
		unsigned long hva;
		bool same;

		slot = id_to_memslot(slots, ms->id);
		if (!slot || slot->base_gfn != ms->base_gfn ||
		    slot->npages != ms->npages || slot->flags != ms->flags)
			return CARETAKER_REFUSE(-EINVAL,
						"the adopting VM's memslots differ");
		hva = slot->userspace_addr;
		if (o->incoming) {
			if (!caretaker_mem_same_pages(kvm, ms, hva))
				return CARETAKER_REFUSE(-EINVAL,
							"a memslot of the adopting VM maps other memory");
			continue;
		}
		mmap_read_lock(kvm->mm);
		vma = vma_lookup(kvm->mm, hva);
		same = vma && vma->vm_file &&
		       file_inode(vma->vm_file) == file_inode(ms->file) &&
		       (vma->vm_flags & VM_SHARED) &&
		       hva + (slot->npages << PAGE_SHIFT) <= vma->vm_end &&
		       ((loff_t)vma->vm_pgoff << PAGE_SHIFT) + hva - vma->vm_start == ms->offset;
		mmap_read_unlock(kvm->mm);
		if (!same)
			return CARETAKER_REFUSE(-EINVAL,
						"a memslot of the adopting VM maps other memory");
	}
	return CARETAKER_OK;
}

/**
 * caretaker_mem_kaddr() - the kernel's address of a byte of guest memory
 * @o: the orphan, its memory pinned
 * @gpa: a guest physical address
 *
 * Context: any context; valid while the memory is pinned.
 * Return: the address, or NULL if no memslot of the orphan holds @gpa.
 */
void *caretaker_mem_kaddr(struct caretaker_orphan *o, gpa_t gpa)
{
	gfn_t gfn = gpa_to_gfn(gpa);
	u32 i;

	for (i = 0; i < o->nr_slots; i++) {
		struct caretaker_mem_slot *ms = &o->slots[i];

		if (gfn >= ms->base_gfn && gfn - ms->base_gfn < ms->npages)
			return page_address(pfn_to_page(ms->pfns[gfn - ms->base_gfn])) +
			       offset_in_page(gpa);
	}
	return NULL;
}
