/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What the caretaker's selftests share: each refusal is checked by its
 * errno and by the reason caretaker.ko logged for it.
 */
#ifndef SELFTEST_KVM_CARETAKER_UTIL_H
#define SELFTEST_KVM_CARETAKER_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest.h"
#include "kvm_util.h"
#include "test_util.h"

static int kmsg_fd = -1;

/* Remember where the kernel log is now. */
static inline void kmsg_mark(void)
{
	if (kmsg_fd < 0)
		kmsg_fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);
	TEST_ASSERT(kmsg_fd >= 0, "open /dev/kmsg");
	lseek(kmsg_fd, 0, SEEK_END);
}

/* Is there a record since kmsg_mark() that contains @what? */
static inline bool kmsg_has(const char *what)
{
	char rec[1024];
	ssize_t n;

	for (;;) {
		n = read(kmsg_fd, rec, sizeof(rec) - 1);
		if (n < 0 && errno == EPIPE)
			continue;	/* overwritten records: go on */
		if (n <= 0)
			return false;
		rec[n] = 0;
		if (strstr(rec, what))
			return true;
	}
}

static inline void __expect_refused(int r, const char *call, int err, const char *why)
{
	TEST_ASSERT(r == -1 && errno == err,
		    "%s: expected errno %d (%s), got %d errno %d (%s)",
		    call, err, strerror(err), r, errno, strerror(errno));
	TEST_ASSERT(kmsg_has(why), "%s: no '%s' in the kernel log", call, why);
}

/* A call must fail with @err, and the kernel must have logged @why. */
#define EXPECT_REFUSED(call, err, why) \
	__expect_refused((kmsg_mark(), (call)), #call, err, why)

/*
 * Move a memslot of the selftest library (anonymous private memory) onto
 * a shared memfd mapping at the same address, as a VMM that wants to be
 * carried must have it: the memslot stays as it is.  Return: the memfd.
 */
static inline int ct_region_to_memfd(struct userspace_mem_region *region)
{
	void *copy = malloc(region->mmap_size);
	int fd;

	TEST_ASSERT(copy, "malloc");
	memcpy(copy, region->mmap_start, region->mmap_size);
	fd = memfd_create("caretaker-guest", 0);
	TEST_ASSERT(fd >= 0, "memfd_create");
	TEST_ASSERT(!ftruncate(fd, region->mmap_size), "ftruncate");
	TEST_ASSERT(mmap(region->mmap_start, region->mmap_size,
			 PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
			 fd, 0) == region->mmap_start, "mmap memfd");
	memcpy(region->mmap_start, copy, region->mmap_size);
	free(copy);
	return fd;
}

/*
 * Run one case in a child process, so that a failed assertion fails that
 * case only, and report it (a case skips by exiting with KSFT_SKIP).
 */
static inline void ct_run_case(const char *name, void (*fn)(void))
{
	int status;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	TEST_ASSERT(pid >= 0, "fork");
	if (!pid) {
		fn();
		exit(KSFT_PASS);
	}
	TEST_ASSERT(waitpid(pid, &status, 0) == pid, "waitpid");
	if (WIFEXITED(status) && WEXITSTATUS(status) == KSFT_PASS)
		ksft_test_result_pass("%s\n", name);
	else if (WIFEXITED(status) && WEXITSTATUS(status) == KSFT_SKIP)
		ksft_test_result_skip("%s\n", name);
	else
		ksft_test_result_fail("%s\n", name);
}

#endif /* SELFTEST_KVM_CARETAKER_UTIL_H */
