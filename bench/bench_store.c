/*
 * bench_store.c - the store's write path alone (cache_put_window), the one
 * thread that bounds a cold query (issue 18, item 3): ROWS synthetic flows
 * of one subject over one day, in windows of WINDOW records sorted in key
 * order as the decoders hand them over, stored into a fresh cache in
 * DIR, each window with its coverage in one call.  Windows arrive as the
 * engine's do with requests in flight: in pairs swapped (window 1 before
 * window 0, 3 before 2, ...), and every tenth window is followed by a
 * child that repeats half its records (a split window's answer holds
 * records its parent stored: ON CONFLICT DO NOTHING does work).
 *
 *   bench_store DIR [ROWS [WINDOW]]      (defaults 2,000,000 and 10,000)
 *
 * The records look like flowsim's heavy host's: IPv4 peers, ports, TCP
 * flags, counters, interfaces, one or two host groups a side, a Community
 * ID and a 16-hex-digit id.  Prints one line, "ROWS SECONDS CPU_SECONDS
 * FILE_BYTES" (rows offered, duplicates included; wall and CPU time of the
 * cache_put_window calls only; the database file's size after its close,
 * WAL checkpointed); exits 1 with the cause on stderr when the cache
 * cannot be opened or a window is refused.  DIR must not hold a cache of
 * this URL yet (a fresh directory a run).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cache.h"

#define BENCH_DAY0 1795824000000LL	/* 2026-11-28T00:00Z, flowsim's heavy day */
#define BENCH_DAY_MS 86400000LL

/* The time of a clock, in seconds. */
static double bench_clock_s(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* xorshift64*: the same records every run. */
static uint64_t bench_rand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

/* Record i of the day, its start in [w0, w0 + wlen). */
static void bench_rec(struct flow_rec *r, uint64_t *s, int64_t w0, int64_t wlen)
{
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	bool out = bench_rand(s) & 1;
	uint8_t *me = out ? r->src : r->dst, *peer = out ? r->dst : r->src;

	memset(r, 0, sizeof(*r));
	snprintf(r->id, sizeof(r->id), "%016llx", (unsigned long long)bench_rand(s));
	r->start_ms = w0 + (int64_t)(bench_rand(s) % (uint64_t)wlen);
	r->end_ms = r->start_ms + (int64_t)(bench_rand(s) % 30000);
	me[10] = me[11] = peer[10] = peer[11] = 0xff;
	me[12] = 10, me[13] = 0, me[14] = 1, me[15] = 20;
	uint32_t p = (uint32_t)bench_rand(s);
	memcpy(peer + 12, &p, 4);
	r->sport = (int32_t)(bench_rand(s) % 64512) + 1024;
	r->dport = (int32_t)(bench_rand(s) % 1024);
	r->proto = 6;
	r->tcp_flags = (int32_t)(bench_rand(s) % 64);
	r->icmp_type = r->icmp_code = -1;
	r->pkts = (int64_t)(bench_rand(s) % 1000) + 1;
	r->bytes = r->pkts * (int64_t)(bench_rand(s) % 1400 + 60);
	r->in_if = (int64_t)(bench_rand(s) % 48) + 1;
	r->out_if = (int64_t)(bench_rand(s) % 48) + 1;
	r->exporter = 1;
	r->app = (int64_t)(bench_rand(s) % 200);
	r->src_as = 64500;
	r->dst_as = 15169;
	r->sampling = 100;
	r->nsrc_groups = 1;
	r->src_groups[0] = (uint32_t)(bench_rand(s) % 40);
	r->ndst_groups = 2;
	r->dst_groups[0] = (uint32_t)(bench_rand(s) % 40);
	r->dst_groups[1] = (uint32_t)(bench_rand(s) % 40);
	memcpy(r->community_id, "1:", 2);
	for (int i = 0; i < 27; i++)
		r->community_id[2 + i] = b64[bench_rand(s) % 64];
	r->community_id[29] = '=';
	r->community_id[30] = '\0';
	r->extra[0] = '\0';
}

/* Store window w's records (recs, n, sorted) over its slice of the day. */
static int bench_put(struct cache *c, const struct cache_query *q, struct flow_rec *recs,
		     size_t n, int64_t w0, int64_t wlen, double *wall, double *cpu, char *err)
{
	struct cache_cover cv = {w0, w0 + wlen, BENCH_DAY0 + BENCH_DAY_MS, false, (int64_t)n};
	double t0 = bench_clock_s(CLOCK_MONOTONIC), c0 = bench_clock_s(CLOCK_PROCESS_CPUTIME_ID);
	int rc = cache_put_window(c, q, recs, n, &cv, err);

	*wall += bench_clock_s(CLOCK_MONOTONIC) - t0;
	*cpu += bench_clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
	return rc;
}

int main(int argc, char **argv)
{
	char err[CACHE_ERRLEN] = "", path[4096];
	struct cache_identity id = {"http://bench-store.invalid", "flowsim", "flowapi"};
	struct cache *c = NULL;
	struct cache_query q = {0};
	struct flow_rec *w[2] = {NULL, NULL};
	uint64_t seed = 0x9e3779b97f4a7c15ULL;
	double wall = 0, cpu = 0;
	long long offered = 0;
	struct stat sb;
	int rc = 1;

	if (argc < 2 || argc > 4) {
		fprintf(stderr, "usage: bench_store DIR [ROWS [WINDOW]]\n");
		return 2;
	}
	long long rows = argc > 2 ? atoll(argv[2]) : 2000000;
	size_t wn = argc > 3 ? (size_t)atoll(argv[3]) : 10000;
	if (rows < 1 || wn < 2 || wn > 1000000) {
		fprintf(stderr, "bench_store: bad ROWS or WINDOW\n");
		return 2;
	}
	long long nwin = (rows + (long long)wn - 1) / (long long)wn;
	int64_t wlen = BENCH_DAY_MS / nwin;
	cache_prefix_parse("10.0.1.20", &q.subject);
	q.start = BENCH_DAY0;
	q.end = BENCH_DAY0 + BENCH_DAY_MS;
	w[0] = malloc(wn * sizeof(*w[0]));
	w[1] = malloc(wn * sizeof(*w[1]));
	if (!w[0] || !w[1]) {
		fprintf(stderr, "bench_store: out of memory\n");
		goto cleanup;
	}
	if (cache_open(argv[1], &id, &c, err)) {
		fprintf(stderr, "bench_store: cannot open the cache: %s\n", err);
		goto cleanup;
	}
	snprintf(path, sizeof(path), "%s", cache_path(c));
	for (long long i = 0; i < nwin; i += 2) {
		/* windows i and i + 1 made, then stored i + 1 first */
		size_t n[2] = {0, 0};
		for (int k = 0; k < 2 && i + k < nwin; k++) {
			n[k] = wn;
			for (size_t j = 0; j < wn; j++)
				bench_rec(&w[k][j], &seed, BENCH_DAY0 + (i + k) * wlen, wlen);
			qsort(w[k], wn, sizeof(*w[k]), cache_rec_cmp);
		}
		for (int k = 1; k >= 0; k--) {
			if (!n[k])
				continue;
			int64_t w0 = BENCH_DAY0 + (i + k) * wlen;
			if (bench_put(c, &q, w[k], n[k], w0, wlen, &wall, &cpu, err))
				goto refused;
			offered += (long long)n[k];
			if ((i + k) % 10 == 0) {	/* a split child: its first half again */
				if (bench_put(c, &q, w[k], n[k] / 2, w0, wlen / 2, &wall, &cpu, err))
					goto refused;
				offered += (long long)(n[k] / 2);
			}
		}
	}
	cache_close(c);
	c = NULL;
	printf("%lld %.6f %.6f %lld\n", offered, wall, cpu,
	       stat(path, &sb) == 0 ? (long long)sb.st_size : -1LL);
	rc = 0;
	goto cleanup;
refused:
	fprintf(stderr, "bench_store: a window was refused: %s\n", err);
cleanup:
	cache_close(c);
	free(w[0]);
	free(w[1]);
	return rc;
}
