/*
 * bench_audit.c - what the audit behind every "complete" costs (issue 10):
 * cache_audit over a day of 300 coverage rows and 3 gaps, against
 * cache_missing over the same rows (what every query already does before
 * it asks anything), in the same run.  Prints a markdown section for
 * bench/REPORT.md.  Usage: bench_audit [ITERATIONS]
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"

#define WINDOWS 300

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	int iters = argc > 1 ? atoi(argv[1]) : 2000;
	char dir[] = "/tmp/bench_audit.XXXXXX", err[CACHE_ERRLEN] = "";
	static const struct cache_identity id = {"http://bench/", "bench", "flowapi"};
	struct cache *c = NULL;
	struct cache_query q = {.start = 20000 * CACHE_DAY_MS, .end = 20001 * CACHE_DAY_MS};
	double *ta, *tm;

	if (!mkdtemp(dir) || cache_open(dir, &id, &c, err) ||
	    cache_prefix_parse("10.0.1.20", &q.subject)) {
		fprintf(stderr, "bench_audit: cannot make a cache: %s\n", err);
		return 1;
	}
	/* a day of 300 windows of uneven length, and 3 one-millisecond gaps */
	int64_t t = q.start, step = CACHE_DAY_MS / WINDOWS;
	for (int i = 0; i < WINDOWS; i++) {
		int64_t e = i == WINDOWS - 1 ? q.end : t + step;
		struct cache_cover cv = {t, e, 1, false, 9000};
		if (i % 100 == 50) {
			struct cache_gap gap = {.start = t, .end = t + 1, .seen = 10000};
			snprintf(gap.peer, sizeof(gap.peer), "203.0.113.%d", i / 100);
			cache_put_gap(c, &q, &gap, err);
			cv.start = t + 1;
		}
		if (cache_put_window(c, &q, NULL, 0, &cv, err)) {
			fprintf(stderr, "bench_audit: %s\n", err);
			return 1;
		}
		t = e;
	}
	ta = calloc((size_t)iters, sizeof(*ta));
	tm = calloc((size_t)iters, sizeof(*tm));
	if (!ta || !tm)
		return 1;
	for (int i = 0; i < iters; i++) {
		struct cache_audit a;
		struct cache_ivals miss = {0};
		double t0 = now_s();
		if (cache_audit(c, &q, 2, 0, &a, err) || a.holes.n || a.ngaps != 3) {
			fprintf(stderr, "bench_audit: the audit is wrong: %s\n", err);
			return 1;
		}
		double t1 = now_s();
		if (cache_missing(c, &q, 2, 0, &miss, err) || miss.n != 3) {
			fprintf(stderr, "bench_audit: cache_missing is wrong: %s\n", err);
			return 1;
		}
		double t2 = now_s();
		ta[i] = (t1 - t0) * 1e6;
		tm[i] = (t2 - t1) * 1e6;
		cache_audit_free(&a);
		cache_ivals_free(&miss);
	}
	qsort(ta, (size_t)iters, sizeof(*ta), cmp_d);
	qsort(tm, (size_t)iters, sizeof(*tm), cmp_d);
	double a50 = ta[iters / 2], a99 = ta[iters * 99 / 100];
	double m50 = tm[iters / 2], m99 = tm[iters * 99 / 100];
	printf("`bench/bench_audit`: `cache_audit` (the check behind every exit 0 and "
	       "`\"complete\": true`) over one subject's day of %d coverage rows and 3 "
	       "one-millisecond gaps, %d times; baseline, same run: `cache_missing` over the same "
	       "rows (what every query already runs before its first request).\n\n",
	       WINDOWS, iters);
	printf("| figure | value | ratio |\n| --- | --- | --- |\n");
	printf("| cache_missing, median / 99th percentile | %.1f / %.1f us | 1.00 (baseline) |\n",
	       m50, m99);
	printf("| cache_audit, median / 99th percentile | %.1f / %.1f us | **%.2f x** cache_missing "
	       "(target: well under 1 ms: %s) |\n",
	       a50, a99, a50 / m50, a99 < 1000 ? "met" : "**missed**");
	char path[512];
	snprintf(path, sizeof(path), "%s", cache_path(c));
	cache_close(c);
	unlink(path);
	strcat(path, "-wal");
	unlink(path);
	path[strlen(path) - 4] = '\0';
	strcat(path, "-shm");
	unlink(path);
	rmdir(dir);
	free(ta);
	free(tm);
	return 0;
}
