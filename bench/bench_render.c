/*
 * bench_render.c - the CSV renderer alone, on a cache a front has filled
 * (bench/nfdump.py): cache_render(CACHE_CSV) of one query to /dev/null,
 * ROUNDS times, in one process, so that what is timed is what flows.csv
 * costs once the flows are stored: SQLite's scan of the flows (the cache
 * file in the page cache after the first round), the decisions of
 * render.c (names, times in TZ, Community ID, ...), the CSV writer and
 * stdio's writes to /dev/null.  Not included: the process's start, the
 * cache's open, the engine (no coverage check, no audit).
 *
 *   bench_render CACHE_DIR URL PRODUCT DRIVER SUBJECT FROM_MS TO_MS ROUNDS [OUT]
 *
 * OUT: "csv" (the default), "ndjson" or "summary" (summary.txt) to /dev/null,
 * or a path FILE.sqlite:
 * flows.sqlite written there each round (bench/fs.py) and removed after.
 *
 * URL, PRODUCT and DRIVER are the cache's identity (its meta table: the
 * file is named from the URL).  Prints one line a round, "ROWS SECONDS
 * CPU_SECONDS" (wall time and this process's CPU time);
 * exits 1 with the cause on stderr when the cache cannot be opened or a
 * render fails.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"

/* The time of a clock (CLOCK_MONOTONIC: wall; CLOCK_PROCESS_CPUTIME_ID:
 * this process's CPU), in seconds. */
static double bench_clock_s(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	char err[CACHE_ERRLEN] = "";
	struct cache *c = NULL;
	struct cache_query q = {0};
	int rc = 1;

	if (argc != 9 && argc != 10) {
		fprintf(stderr, "usage: bench_render CACHE_DIR URL PRODUCT DRIVER SUBJECT FROM_MS "
				"TO_MS ROUNDS [csv|ndjson|summary|FILE.sqlite]\n");
		return 2;
	}
	struct cache_identity id = {argv[2], argv[3], argv[4]};
	q.start = strtoll(argv[6], NULL, 10);
	q.end = strtoll(argv[7], NULL, 10);
	int rounds = atoi(argv[8]);
	const char *outarg = argc == 10 ? argv[9] : "csv";
	size_t olen = strlen(outarg);
	bool summary = strcmp(outarg, "summary") == 0;	/* cache_render_summary */
	enum cache_format fmt = strcmp(outarg, "csv") == 0 || summary ? CACHE_CSV
				: strcmp(outarg, "ndjson") == 0 ? CACHE_NDJSON
				: olen > 7 && strcmp(outarg + olen - 7, ".sqlite") == 0 ? CACHE_SQLITE
				: (enum cache_format)-1;
	if ((int)fmt < 0) {
		fprintf(stderr, "bench_render: OUT is csv, ndjson, summary or FILE.sqlite\n");
		return 2;
	}
	if (cache_prefix_parse(argv[5], &q.subject) || q.end <= q.start || rounds < 1) {
		fprintf(stderr, "bench_render: bad subject, range or rounds\n");
		return 2;
	}
	tzset();
	if (cache_open(argv[1], &id, &c, err)) {
		fprintf(stderr, "bench_render: cannot open the cache: %s\n", err);
		return 1;
	}
	for (int i = 0; i < rounds; i++) {
		FILE *out = fopen("/dev/null", "w");
		int64_t rows = 0;
		if (!out) {
			perror("bench_render: /dev/null");
			goto cleanup;
		}
		double t0 = bench_clock_s(CLOCK_MONOTONIC), c0 = bench_clock_s(CLOCK_PROCESS_CPUTIME_ID);
		int r = summary ? cache_render_summary(c, &q, out, err)
					: cache_render(c, &q, fmt, fmt == CACHE_SQLITE ? NULL : out,
						       fmt == CACHE_SQLITE ? outarg : NULL, NULL, 0,
						       &rows, err);
		if (fmt == CACHE_SQLITE)
			unlink(outarg);
		int fr = fclose(out);
		double t1 = bench_clock_s(CLOCK_MONOTONIC), c1 = bench_clock_s(CLOCK_PROCESS_CPUTIME_ID);
		if (r || fr) {
			fprintf(stderr, "bench_render: the render failed: %s\n", r ? err : "fclose");
			goto cleanup;
		}
		printf("%lld %.6f %.6f\n", (long long)rows, t1 - t0, c1 - c0);
		fflush(stdout);
	}
	rc = 0;
cleanup:
	cache_close(c);
	return rc;
}
