// SPDX-License-Identifier: GPL-2.0
/*
 * What the machine itself takes from a busy thread, with no test host
 * running: one thread per host CPU, pinned there, reads CLOCK_MONOTONIC
 * in a loop for the given seconds; a step between two reads longer than
 * 1 ms is time the CPU spent elsewhere (the host's own kernel threads and
 * daemons, or whatever runs the machine).  scripts/run-perf.sh runs it
 * before make bench boots the test host, whose vCPU threads see the same.
 *
 *   host-noise SECONDS
 *
 * One line per CPU:
 *   CT-HOST-NOISE cpu=N secs=S gaps=G longest_ms=L total_ms=T
 * G gaps longer than 1 ms, the longest L ms, T ms in all.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define GAP_NS 1000000ULL

struct probe {
	pthread_t thread;
	int cpu;
	uint64_t end;
	unsigned long gaps;
	uint64_t longest, total;
	int err;
};

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000000000ULL + t.tv_nsec;
}

static void *probe_main(void *arg)
{
	struct probe *p = arg;
	uint64_t last, t;
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(p->cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set)) {
		p->err = errno;
		return NULL;
	}
	last = now_ns();
	do {
		t = now_ns();
		if (t - last > GAP_NS) {
			p->gaps++;
			p->total += t - last;
			if (t - last > p->longest)
				p->longest = t - last;
		}
		last = t;
	} while (t < p->end);
	return NULL;
}

int main(int argc, char **argv)
{
	int secs = argc > 1 ? atoi(argv[1]) : 0;
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	struct probe *p;
	uint64_t end;
	int i;

	if (secs < 1 || secs > 600 || n < 1) {
		fprintf(stderr, "usage: host-noise SECONDS (1..600)\n");
		return 2;
	}
	p = calloc(n, sizeof(*p));
	if (!p)
		return 1;
	end = now_ns() + secs * 1000000000ULL;
	for (i = 0; i < n; i++) {
		p[i].cpu = i;
		p[i].end = end;
		if (pthread_create(&p[i].thread, NULL, probe_main, &p[i])) {
			fprintf(stderr, "host-noise: pthread_create failed\n");
			return 1;
		}
	}
	for (i = 0; i < n; i++)
		pthread_join(p[i].thread, NULL);
	for (i = 0; i < n; i++) {
		if (p[i].err) {
			fprintf(stderr, "host-noise: CPU %d: %s\n", i, strerror(p[i].err));
			return 1;
		}
		printf("CT-HOST-NOISE cpu=%d secs=%d gaps=%lu longest_ms=%.3f total_ms=%.3f\n",
		       i, secs, p[i].gaps, p[i].longest / 1e6, p[i].total / 1e6);
	}
	return 0;
}
