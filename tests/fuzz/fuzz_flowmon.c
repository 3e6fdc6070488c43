/*
 * fuzz_flowmon.c - libFuzzer target: a Flowmon result (a bare JSON array
 * of rows, every value a string; G10's fixture), decoded row by row as
 * the Flowmon driver does (flowmon_decode_row, in UTC and in New York's
 * zone, which has a repeated hour), its kept rows numbered (flowmon_ids),
 * and the rows' keys used to split a part (flowmon_split) whose shape the
 * input's first bytes choose.
 *
 * The body is handed over exactly as long as the input, without a NUL
 * after it, so that any read past 'len' is an ASan report.
 *
 * Properties checked beyond "no crash":
 *   - a time accepted has the guide's shape, digits where digits go,
 *     checked apart from the parser, and is not before 1970;
 *   - a row kept is in range: 0 <= start <= end <= 2^53, ports, protocol,
 *     flags, ICMP type and code and counters within their types, flags
 *     only on TCP, ICMP's fields only on ICMP; a refused row says why in
 *     one line;
 *   - decoded as a sample, the same verdict, start and addresses;
 *   - a row read inexact keeps a count unknown (a "1.3 G" is never
 *     stored as if exact);
 *   - ids: 32 hex digits, then ".N" (N >= 2) for the repeats of a row;
 *     no two alike; the same rows numbered again, the same ids;
 *   - the split: 0 parts only for a part of one class and one port each
 *     side; else 2 or 3 parts inside the parent, and every key of the
 *     parent, and every end of every part's ranges, in exactly one part.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "fetch_i.h"
#include "fuzzutil.h"
#include "nfdump.h"

#define EXACT_MAX 9007199254740992LL	/* 2^53 */
#define ROWS_MAX 512

static void check_opt(int64_t v, int64_t lo, int64_t hi, const char *what)
{
	FUZZ_CHECK(v == -1 || (v >= lo && v <= hi), "%s = %lld out of [%lld, %lld]", what,
		   (long long)v, (long long)lo, (long long)hi);
}

static void check_row(const struct flow_rec *f, bool inexact)
{
	FUZZ_CHECK(f->start_ms >= 0 && f->start_ms <= f->end_ms && f->end_ms <= EXACT_MAX,
		   "start %lld, end %lld", (long long)f->start_ms, (long long)f->end_ms);
	check_opt(f->sport, 0, 65535, "sport");
	check_opt(f->dport, 0, 65535, "dport");
	check_opt(f->proto, 0, 255, "proto");
	check_opt(f->tcp_flags, 0, 63, "tcp_flags");
	check_opt(f->icmp_type, 0, 255, "icmp_type");
	check_opt(f->icmp_code, 0, 255, "icmp_code");
	check_opt(f->pkts, 0, EXACT_MAX, "pkts");
	check_opt(f->bytes, 0, EXACT_MAX, "bytes");
	FUZZ_CHECK(f->tcp_flags == -1 || f->proto == 6, "tcp_flags on protocol %d", f->proto);
	FUZZ_CHECK((f->icmp_type == -1 && f->icmp_code == -1) || f->proto == 1 || f->proto == 58,
		   "icmp fields on protocol %d", f->proto);
	FUZZ_CHECK(strnlen(f->extra, sizeof(f->extra)) < sizeof(f->extra), "extra not terminated");
	FUZZ_CHECK(!inexact || f->pkts == -1 || f->bytes == -1, "inexact, yet both counts kept");
}

/* An id: 32 hex digits, then nothing or ".N" with N >= 2. */
static void check_id(const char *id)
{
	size_t n = strnlen(id, CACHE_ID_MAX + 1);

	FUZZ_CHECK(n >= 32 && n <= CACHE_ID_MAX, "id '%s'", id);
	for (size_t i = 0; i < 32; i++)
		FUZZ_CHECK((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f'),
			   "id '%s'", id);
	if (n > 32) {
		char *end;
		long k = strtol(id + 33, &end, 10);
		FUZZ_CHECK(id[32] == '.' && k >= 2 && *end == '\0', "id '%s'", id);
	}
}

/* A time accepted has the guide's shape, "YYYY-MM-DD HH:MM[:SS[.f+]]",
 * digits where digits go: checked here apart from the parser. */
static void check_time_text(const char *t)
{
	static const char shape[] = "dddd-dd-dd dd:dd";
	size_t n = strlen(t), i;

	FUZZ_CHECK(n >= 16, "time '%s' accepted", t);
	for (i = 0; i < 16; i++)
		FUZZ_CHECK(shape[i] == 'd' ? (t[i] >= '0' && t[i] <= '9') : t[i] == shape[i],
			   "time '%s' accepted", t);
	if (t[i] == ':') {
		FUZZ_CHECK(t[i + 1] >= '0' && t[i + 1] <= '9' && t[i + 2] >= '0' && t[i + 2] <= '9',
			   "time '%s' accepted", t);
		i += 3;
		if (t[i] == '.')
			for (i++; t[i] >= '0' && t[i] <= '9'; i++)
				;
	}
	FUZZ_CHECK(t[i] == '\0', "time '%s' accepted", t);
}

static int cmp_id(const void *a, const void *b)
{
	return strcmp(((const struct flow_rec *)a)->id, ((const struct flow_rec *)b)->id);
}

static bool in_part(const struct flowmon_part *p, const struct flowmon_key *k)
{
	return (k->cls & p->proto) && k->dp >= p->dlo && k->dp <= p->dhi && k->sp >= p->slo &&
	       k->sp <= p->shi;
}

/* The split of part p by keys: see the properties above. */
static void check_split(const struct flowmon_part *p, struct flowmon_key *keys, size_t n)
{
	struct flowmon_key *copy = malloc((n ? n : 1) * sizeof(*copy)), probe[ROWS_MAX + 64];
	struct flowmon_part kids[3];
	size_t np = 0;

	if (!copy)
		return;
	for (size_t i = 0; i < n && np < ROWS_MAX; i++)
		if (in_part(p, &keys[i]))
			probe[np++] = keys[i];
	memcpy(copy, keys, n * sizeof(*copy));
	int k = flowmon_split(p, copy, n, kids);
	free(copy);
	bool single = (p->proto == FLOWMON_TCP || p->proto == FLOWMON_UDP ||
		       p->proto == FLOWMON_OTHER) && p->dlo == p->dhi && p->slo == p->shi;
	FUZZ_CHECK(k == 0 ? single : (k == 2 || k == 3), "%d parts (one class and ports: %d)", k,
		   single);
	for (int i = 0; i < k; i++) {
		const struct flowmon_part *c = &kids[i];
		FUZZ_CHECK(c->proto && !(c->proto & ~p->proto) && c->dlo <= c->dhi &&
			   c->slo <= c->shi && c->dlo >= p->dlo && c->dhi <= p->dhi &&
			   c->slo >= p->slo && c->shi <= p->shi, "part %d outside its parent", i);
		/* the corners of each part, in each class it holds */
		for (uint8_t cls = 1; cls <= 4; cls <<= 1)
			if (c->proto & cls) {
				probe[np++] = (struct flowmon_key){cls, c->dlo, c->slo};
				probe[np++] = (struct flowmon_key){cls, c->dhi, c->shi};
			}
	}
	for (size_t i = 0; k > 0 && i < np; i++) {
		int hits = 0;
		for (int j = 0; j < k; j++)
			hits += in_part(&kids[j], &probe[i]);
		FUZZ_CHECK(hits == 1, "key (class %u, %u, %u) in %d parts", probe[i].cls,
			   probe[i].dp, probe[i].sp, hits);
	}
}

static void run_zone(const cJSON *root, struct nfd_tz *tz, const uint8_t *data, size_t size)
{
	struct flow_rec *recs = calloc(ROWS_MAX, sizeof(*recs));
	struct flowmon_key *keys = calloc(ROWS_MAX, sizeof(*keys));
	const cJSON *it;
	size_t n = 0, nk = 0;

	if (!recs || !keys)
		goto out;
	cJSON_ArrayForEach(it, root) {
		struct flow_rec f, s;
		bool inexact = false, sinexact = false;
		char why[160] = "", swhy[160] = "";
		if (n == ROWS_MAX)
			break;
		int rc = flowmon_decode_row(it, tz, false, &f, &inexact, why, sizeof(why));
		int src = flowmon_decode_row(it, tz, true, &s, &sinexact, swhy, sizeof(swhy));
		FUZZ_CHECK(rc == 0 || rc == -EINVAL, "rc %d", rc);
		const cJSON *ts = cJSON_GetObjectItemCaseSensitive(it, "ts");
		int64_t t;
		if (cJSON_IsString(ts) && flowmon_parse_time(tz, ts->valuestring, &t) == 0) {
			check_time_text(ts->valuestring);
			FUZZ_CHECK(t >= 0, "time '%s' read as %lld", ts->valuestring, (long long)t);
		}
		FUZZ_CHECK(rc == src, "whole %d, as a sample %d", rc, src);
		if (rc) {
			fuzz_check_message(why, sizeof(why));
			continue;
		}
		FUZZ_CHECK(s.start_ms == f.start_ms && memcmp(s.src, f.src, 16) == 0 &&
			   memcmp(s.dst, f.dst, 16) == 0, "the sample reads the row otherwise");
		check_row(&f, inexact);
		recs[n++] = f;
		if (f.proto >= 0) {
			struct flowmon_key *k = &keys[nk];
			k->cls = f.proto == 6 ? FLOWMON_TCP : f.proto == 17 ? FLOWMON_UDP : FLOWMON_OTHER;
			k->dp = (uint16_t)(f.icmp_type >= 0 ? f.icmp_type * 256 + f.icmp_code :
				f.dport >= 0 ? f.dport : 0);
			k->sp = (uint16_t)(f.sport >= 0 ? f.sport : 0);
			nk++;
		}
	}
	if (flowmon_ids(recs, n) == 0) {
		struct flow_rec *again = malloc((n ? n : 1) * sizeof(*again));
		for (size_t i = 0; i < n; i++)
			check_id(recs[i].id);
		if (again) {
			memcpy(again, recs, n * sizeof(*again));
			FUZZ_CHECK(flowmon_ids(again, n) == 0, "numbered once, not twice");
			for (size_t i = 0; i < n; i++)
				FUZZ_CHECK(strcmp(again[i].id, recs[i].id) == 0, "ids differ the 2nd time");
			qsort(again, n, sizeof(*again), cmp_id);
			for (size_t i = 1; i < n; i++)
				FUZZ_CHECK(strcmp(again[i - 1].id, again[i].id) != 0, "two rows %s",
					   again[i].id);
			free(again);
		}
	}
	/* the part: its shape from the first bytes */
	uint8_t b[8] = {0};
	memcpy(b, data, size < sizeof(b) ? size : sizeof(b));
	struct flowmon_part p = {(uint8_t)(1 + b[0] % 7), 0, 65535, 0, 65535};
	uint16_t d1 = (uint16_t)(b[1] | b[2] << 8), d2 = (uint16_t)(b[3] | b[4] << 8);
	uint16_t s1 = (uint16_t)(b[5] | b[6] << 8);
	if (b[7] & 1) {
		p.dlo = d1 < d2 ? d1 : d2;
		p.dhi = d1 < d2 ? d2 : d1;
	}
	if (b[7] & 2)
		p.slo = p.shi = s1;
	check_split(&p, keys, nk);
out:
	free(recs);
	free(keys);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct nfd_tz *utc, *ny;
	char err[FETCH_ERRLEN];
	char *body = malloc(size ? size : 1);

	if (!body)
		return 0;
	if (!utc && nfd_tz_open("UTC", &utc, err))
		abort();
	if (!ny && nfd_tz_open("America/New_York", &ny, err))
		ny = NULL;	/* no tzdata: UTC alone */
	memcpy(body, data, size);
	cJSON *root = cJSON_ParseWithLength(body, size);
	if (cJSON_IsArray(root)) {
		run_zone(root, utc, data, size);
		if (ny)
			run_zone(root, ny, data, size);
	}
	cJSON_Delete(root);
	free(body);
	return 0;
}
