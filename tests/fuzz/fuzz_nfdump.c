/*
 * fuzz_nfdump.c - libFuzzer target: nfdump's output decoder (nfd_decode,
 * fetch/nfdump.c).
 *
 * The input is the output of `nfdump -q -o json` as the runner would hand
 * it over (any bytes, NULs included).  Properties checked beyond "no
 * crash":
 *   - every record is counted once: kept + outside + foreign + rejected
 *     records add up to the records seen (lines outside any record are
 *     counted as rejected, so at least that many);
 *   - a kept record started in the window, involves the subject, has
 *     end >= start, an id of 32 hex digits with an optional ".N", unique
 *     within the call, and an extra that is empty or one {...} object
 *     without control bytes;
 *   - the first rejection's cause and a refusal's message are one line;
 *   - decoding the same bytes again gives the same ids.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fetch.h"
#include "fuzzutil.h"
#include "nfdump.h"

#define W0 1795737600000LL
#define W1 (W0 + 86400000LL)

static void check_rec(const struct cache_query *q, const struct flow_rec *f)
{
	size_t n = strlen(f->id), x = strlen(f->extra);

	FUZZ_CHECK(f->start_ms >= W0 && f->start_ms < W1, "start %lld outside", (long long)f->start_ms);
	FUZZ_CHECK(f->end_ms >= f->start_ms, "ends before it starts");
	FUZZ_CHECK(cache_prefix_contains(&q->subject, f->src) ||
		   cache_prefix_contains(&q->subject, f->dst), "neither side is the subject");
	FUZZ_CHECK(n >= 32 && strspn(f->id, "0123456789abcdef") == 32, "id '%s'", f->id);
	FUZZ_CHECK(n == 32 || (f->id[32] == '.' && strspn(f->id + 33, "0123456789") == n - 33),
		   "id '%s'", f->id);
	FUZZ_CHECK(x == 0 || (f->extra[0] == '{' && f->extra[x - 1] == '}'), "extra '%s'", f->extra);
	for (size_t i = 0; i < x; i++)
		FUZZ_CHECK((unsigned char)f->extra[i] >= ' ' && f->extra[i] != 0x7f,
			   "control byte in extra");
}

static int id_cmp(const void *a, const void *b)
{
	return strcmp(((const struct flow_rec *)a)->id, ((const struct flow_rec *)b)->id);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cache_query q;
	struct nfd_out o, again;
	char err[FETCH_ERRLEN];
	int rc;

	memset(&q, 0, sizeof(q));
	/* the subject from the first byte: an IPv4 /8, or all of IPv6 */
	if (cache_prefix_parse(size && (data[0] & 1) ? "::/0" : "10.0.0.0/8", &q.subject) != 0)
		abort();
	memset(&o, 0, sizeof(o));
	memset(&again, 0, sizeof(again));
	rc = nfd_decode((const char *)data, size, &q, W0, W1, &o, err);
	FUZZ_CHECK(rc == 0 || rc == -EBADMSG || rc == -ENOMEM, "rc %d", rc);
	if (rc == -EBADMSG)
		fuzz_check_message(err, sizeof(err));
	if (rc == 0) {
		FUZZ_CHECK(o.n + o.outside + o.foreign + o.rejected >= o.records,
			   "%zu records, %zu+%zu+%zu+%zu counted", o.records, o.n, o.outside,
			   o.foreign, o.rejected);
		if (o.rejected)
			fuzz_check_message(o.why, sizeof(o.why));
		for (size_t i = 0; i < o.n; i++)
			check_rec(&q, &o.recs[i]);
		FUZZ_CHECK(nfd_decode((const char *)data, size, &q, W0, W1, &again, err) == 0,
			   "second decode failed");
		FUZZ_CHECK(again.n == o.n, "second decode kept another number");
		for (size_t i = 0; i < o.n; i++)
			FUZZ_CHECK(strcmp(o.recs[i].id, again.recs[i].id) == 0, "ids differ");
		if (o.n > 1)
			qsort(o.recs, o.n, sizeof(o.recs[0]), id_cmp);
		for (size_t i = 1; i < o.n; i++)
			FUZZ_CHECK(strcmp(o.recs[i].id, o.recs[i - 1].id) != 0, "id '%s' twice",
				   o.recs[i].id);
	}
	nfd_out_free(&o);
	nfd_out_free(&again);
	return 0;
}
