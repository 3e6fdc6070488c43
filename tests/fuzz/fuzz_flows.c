/*
 * fuzz_flows.c - libFuzzer target: an answer of flows, decoded as the
 * engine's decoding threads do, by both drivers: a flowapi/1 /api/v1/flows
 * answer (flowapi_decode_flows) and an SNA search's results
 * (sna_decode_answer); each body is given to both.
 *
 * The body is handed over exactly as long as the input, without a NUL
 * after it, so that any read past 'len' is an ASan report.  Inputs of even
 * length parse into the decoder's arena (as in production), odd ones
 * through malloc, where ASan sees every cJSON node on its own.
 *
 * Properties checked beyond "no crash":
 *   - the counts add up: answered = kept + rejected, and a failed decode
 *     keeps nothing and says why, in one line without control characters;
 *   - decoded as a sample (the planner's saturated answers), the same
 *     verdict, and every record the whole decode keeps is kept, with the
 *     same start and addresses, in the same order;
 *   - every kept record is in range: an id of 1 to 64 printable characters
 *     without comma or quote, 0 <= start <= end <= 2^53, ports, protocol,
 *     flags, counters and ids within their types, -1 (unknown) never mixed
 *     with the collector's 0 where 0 means unknown, at most 16 groups;
 *   - a kept record written back as a flowapi/1 record decodes to the same
 *     record (nothing is altered on the way in, whichever the dialect),
 *     with the same Community ID;
 *   - the Community ID is the same seen from either end of the flow;
 *   - nothing a NUL cut short is kept: every record kept from the body is
 *     kept, the same, from its twin in which each NUL of a string is a 0x01
 *     (fuzz_nul_twin), so two ids that differ after a "\u0000" never
 *     become one, nor an address with text after a NUL a valid address.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "fetch_i.h"
#include "fuzzutil.h"

#define EXACT_MAX 9007199254740992LL	/* 2^53 */
#define U32_MAX 4294967295LL

static void check_opt(int64_t v, int64_t lo, int64_t hi, bool zero_unknown, const char *what)
{
	if (v == -1)
		return;
	FUZZ_CHECK(v >= lo && v <= hi, "%s = %lld out of [%lld, %lld]", what, (long long)v,
		   (long long)lo, (long long)hi);
	FUZZ_CHECK(!(zero_unknown && v == 0), "%s = 0 kept, though 0 means unknown", what);
}

/* A kept record is in range. */
static void check_record(const struct flow_rec *f)
{
	size_t idlen = strnlen(f->id, sizeof(f->id));

	FUZZ_CHECK(idlen >= 1 && idlen <= CACHE_ID_MAX, "id of length %zu", idlen);
	for (size_t i = 0; i < idlen; i++) {
		unsigned char c = (unsigned char)f->id[i];
		FUZZ_CHECK(c > ' ' && c < 0x7f && c != ',' && c != '"', "id byte 0x%02x", c);
	}
	FUZZ_CHECK(f->start_ms >= 0 && f->start_ms <= f->end_ms && f->end_ms <= EXACT_MAX,
		   "start %lld, end %lld", (long long)f->start_ms, (long long)f->end_ms);
	check_opt(f->sport, 0, 65535, false, "sport");
	check_opt(f->dport, 0, 65535, false, "dport");
	check_opt(f->proto, 0, 255, false, "proto");
	check_opt(f->tcp_flags, 0, 255, false, "tcp_flags");
	check_opt(f->icmp_type, 0, 255, false, "icmp_type");
	check_opt(f->icmp_code, 0, 255, false, "icmp_code");
	FUZZ_CHECK(f->tcp_flags == -1 || f->proto == 6, "tcp_flags on protocol %d", f->proto);
	FUZZ_CHECK((f->icmp_type == -1 && f->icmp_code == -1) || f->proto == 1 || f->proto == 58,
		   "icmp fields on protocol %d", f->proto);
	check_opt(f->pkts, 0, EXACT_MAX, false, "pkts");
	check_opt(f->bytes, 0, EXACT_MAX, false, "bytes");
	check_opt(f->in_if, 0, U32_MAX, true, "in_if");
	check_opt(f->out_if, 0, U32_MAX, true, "out_if");
	check_opt(f->exporter, 0, U32_MAX, false, "exporter");
	check_opt(f->app, 0, U32_MAX, true, "app");
	check_opt(f->src_as, 0, U32_MAX, true, "src_as");
	check_opt(f->dst_as, 0, U32_MAX, true, "dst_as");
	check_opt(f->sampling, 1, U32_MAX, false, "sampling");
	FUZZ_CHECK(f->nsrc_groups <= CACHE_GROUPS_MAX && f->ndst_groups <= CACHE_GROUPS_MAX,
		   "%u / %u groups", f->nsrc_groups, f->ndst_groups);
	size_t cl = strnlen(f->community_id, sizeof(f->community_id));
	FUZZ_CHECK(cl < sizeof(f->community_id), "community id not terminated");
	FUZZ_CHECK(cl == 0 || (cl == 30 && memcmp(f->community_id, "1:", 2) == 0),
		   "community id '%s'", f->community_id);
}

static bool same_record(const struct flow_rec *a, const struct flow_rec *b)
{
	return strcmp(a->id, b->id) == 0 && a->start_ms == b->start_ms &&
	       a->end_ms == b->end_ms && memcmp(a->src, b->src, 16) == 0 &&
	       memcmp(a->dst, b->dst, 16) == 0 && a->sport == b->sport && a->dport == b->dport &&
	       a->proto == b->proto && a->tcp_flags == b->tcp_flags &&
	       a->icmp_type == b->icmp_type && a->icmp_code == b->icmp_code &&
	       a->pkts == b->pkts && a->bytes == b->bytes && a->in_if == b->in_if &&
	       a->out_if == b->out_if && a->exporter == b->exporter && a->app == b->app &&
	       a->src_as == b->src_as && a->dst_as == b->dst_as && a->sampling == b->sampling &&
	       a->nsrc_groups == b->nsrc_groups && a->ndst_groups == b->ndst_groups &&
	       memcmp(a->src_groups, b->src_groups, a->nsrc_groups * sizeof(uint32_t)) == 0 &&
	       memcmp(a->dst_groups, b->dst_groups, a->ndst_groups * sizeof(uint32_t)) == 0 &&
	       strcmp(a->community_id, b->community_id) == 0;
}

static size_t put(char *buf, size_t o, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static size_t put(char *buf, size_t o, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (o >= len)
		return o;
	va_start(ap, fmt);
	o += (size_t)vsnprintf(buf + o, len - o, fmt, ap);
	va_end(ap);
	return o;
}

static size_t put_opt(char *buf, size_t o, size_t len, const char *key, int64_t v)
{
	return v < 0 ? o : put(buf, o, len, ",\"%s\":%lld", key, (long long)v);
}

static size_t put_groups(char *buf, size_t o, size_t len, const char *key,
			 const uint32_t *g, unsigned n)
{
	o = put(buf, o, len, ",\"%s\":[", key);
	for (unsigned i = 0; i < n; i++)
		o = put(buf, o, len, "%s%u", i ? "," : "", g[i]);
	return put(buf, o, len, "]");
}

/* The record as a flowapi/1 record, the way a collector would send it. */
static void encode_record(const struct flow_rec *f, char *buf, size_t len)
{
	char src[48], dst[48];
	size_t o = put(buf, 0, len, "{\"id\":\"");

	for (const char *c = f->id; *c; c++)
		o = put(buf, o, len, *c == '\\' ? "\\\\" : "%c", *c);
	cache_addr_format(f->src, src, sizeof(src));
	cache_addr_format(f->dst, dst, sizeof(dst));
	o = put(buf, o, len, "\",\"start\":%lld,\"end\":%lld,\"src\":\"%s\",\"dst\":\"%s\"",
		(long long)f->start_ms, (long long)f->end_ms, src, dst);
	o = put_opt(buf, o, len, "sport", f->sport);
	o = put_opt(buf, o, len, "dport", f->dport);
	o = put_opt(buf, o, len, "proto", f->proto);
	o = put_opt(buf, o, len, "tcp_flags", f->tcp_flags);
	o = put_opt(buf, o, len, "icmp_type", f->icmp_type);
	o = put_opt(buf, o, len, "icmp_code", f->icmp_code);
	o = put_opt(buf, o, len, "pkts", f->pkts);
	o = put_opt(buf, o, len, "bytes", f->bytes);
	o = put_opt(buf, o, len, "in_if", f->in_if);
	o = put_opt(buf, o, len, "out_if", f->out_if);
	o = put_opt(buf, o, len, "exporter", f->exporter);
	o = put_opt(buf, o, len, "app", f->app);
	o = put_opt(buf, o, len, "src_as", f->src_as);
	o = put_opt(buf, o, len, "dst_as", f->dst_as);
	o = put_opt(buf, o, len, "sampling", f->sampling);
	o = put_groups(buf, o, len, "src_groups", f->src_groups, f->nsrc_groups);
	o = put_groups(buf, o, len, "dst_groups", f->dst_groups, f->ndst_groups);
	o = put(buf, o, len, "}");
	FUZZ_CHECK(o < len, "record of %zu bytes does not fit", o);
}

/* Written back and decoded again, the record is the same. */
static void check_round_trip(const struct flow_rec *f)
{
	char text[2048], why[160];
	struct flow_rec g;
	cJSON *o;

	encode_record(f, text, sizeof(text));
	o = cJSON_Parse(text);
	FUZZ_CHECK(o != NULL, "re-encoded record is not JSON: %s", text);
	memset(&g, 0x5a, sizeof(g));
	int rc = flowapi_decode_record(o, &g, why, sizeof(why));
	cJSON_Delete(o);
	FUZZ_CHECK(rc == 0, "re-encoded record rejected (%s): %s", why, text);
	FUZZ_CHECK(same_record(f, &g), "re-encoded record decodes differently: %s", text);
}

/* The Community ID does not depend on which end is called the source. */
static void check_community_symmetric(const struct flow_rec *f)
{
	struct flow_rec r = *f;
	char id[32];

	if (f->proto == 1 || f->proto == 58)
		return;		/* ICMP: the reply has another type; the vectors test it */
	memcpy(r.src, f->dst, 16);
	memcpy(r.dst, f->src, 16);
	r.sport = f->dport;
	r.dport = f->sport;
	fetch_community_id(&r, 0, id);
	FUZZ_CHECK(strcmp(id, f->community_id) == 0, "community id %s one way, %s the other",
		   f->community_id, id);
}

typedef int (*decode_fn)(const char *body, size_t len, size_t sample_at, struct decoded *out,
			 char *err);

/* Parse with the decoder's arena (even lengths) or through malloc (odd). */
static void set_hooks(size_t size)
{
	if (size % 2 == 0)
		fetch_json_init_hooks();
	else
		cJSON_InitHooks(NULL);
}

/* The same answer decoded whole and as a sample (sample_at 1): the same
 * verdict and count; the sample keeps every record the whole decode keeps
 * (with the same start and addresses), in the same order, and maybe more. */
static void check_sample(decode_fn decode, const char *body, size_t size, int rc,
			 const struct decoded *whole)
{
	struct decoded s;
	char err[FETCH_ERRLEN] = "";

	set_hooks(size);
	int src = decode(body, size, 1, &s, err);
	FUZZ_CHECK(src == rc, "whole: %d, as a sample: %d", rc, src);
	if (src) {
		decoded_free(&s);
		return;
	}
	FUZZ_CHECK(s.answered == whole->answered, "%zu answered whole, %zu as a sample",
		   whole->answered, s.answered);
	FUZZ_CHECK(s.sampled == (s.answered > 0), "sampled %d with %zu records", s.sampled,
		   s.answered);
	FUZZ_CHECK(s.n >= whole->n, "a sample keeps %zu records, the whole answer %zu", s.n,
		   whole->n);
	size_t j = 0;
	for (size_t i = 0; i < whole->n; i++) {
		const struct flow_rec *w = &whole->recs[i];
		while (j < s.n && !(s.recs[j].start_ms == w->start_ms &&
				    memcmp(s.recs[j].src, w->src, 16) == 0 &&
				    memcmp(s.recs[j].dst, w->dst, 16) == 0))
			j++;
		FUZZ_CHECK(j < s.n, "record %s kept whole, not in the sample", w->id);
		j++;
	}
	decoded_free(&s);
}

/* What the body kept (whole decode, rc 0), its NUL twin keeps the same, in
 * the same order, among what it keeps. */
static void check_nul_twin(decode_fn decode, const char *body, size_t size,
			   const struct decoded *d)
{
	struct decoded t;
	char err[FETCH_ERRLEN] = "";
	char *twin = fuzz_nul_twin(body, size);

	if (!twin)
		return;
	set_hooks(size);
	int rc = decode(twin, size, 0, &t, err);
	cJSON_InitHooks(NULL);
	if (rc == -ENOMEM) {
		free(twin);
		return;
	}
	FUZZ_CHECK(rc == 0, "the body decoded, its NUL twin did not: %d %s", rc, err);
	FUZZ_CHECK(t.answered == d->answered, "%zu answered, %zu in the NUL twin", d->answered,
		   t.answered);
	size_t j = 0;
	for (size_t i = 0; i < d->n; i++) {
		while (j < t.n && !(same_record(&d->recs[i], &t.recs[j]) &&
				    strcmp(d->recs[i].extra, t.recs[j].extra) == 0))
			j++;
		FUZZ_CHECK(j < t.n, "record %s kept, not so in the NUL twin: a NUL cut a string",
			   d->recs[i].id);
		j++;
	}
	decoded_free(&t);
	free(twin);
}

static void check_answer(decode_fn decode, const char *body, size_t size)
{
	struct decoded d;
	char err[FETCH_ERRLEN] = "";

	set_hooks(size);
	int rc = decode(body, size, 0, &d, err);
	FUZZ_CHECK(rc == 0 || rc == -EBADMSG || rc == -ENOMEM, "rc %d", rc);
	if (rc) {
		FUZZ_CHECK(d.n == 0 && d.recs == NULL, "a failed decode kept %zu records", d.n);
		if (rc == -EBADMSG)
			fuzz_check_message(err, FETCH_ERRLEN);
	} else {
		FUZZ_CHECK(!d.sampled, "sampled without sample_at");
		FUZZ_CHECK(d.n + d.rejected == d.answered, "%zu kept + %zu rejected != %zu answered",
			   d.n, d.rejected, d.answered);
		FUZZ_CHECK(d.rejected == 0 || d.why[0] != '\0', "rejections without a cause");
		if (d.rejected)
			fuzz_check_message(d.why, sizeof(d.why));
		cJSON_InitHooks(NULL);
		for (size_t i = 0; i < d.n; i++) {
			check_record(&d.recs[i]);
			check_round_trip(&d.recs[i]);
			check_community_symmetric(&d.recs[i]);
		}
		check_nul_twin(decode, body, size, &d);
	}
	check_sample(decode, body, size, rc, &d);
	decoded_free(&d);
}

typedef int (*capped_fn)(const char *body, size_t len, size_t sample_at, size_t limit,
			 struct decoded *out, char *err);

/* The decoding limit (issue 12): under a cap of 'limit' records, an
 * answer of more is refused whole with nothing kept (-EBADMSG, a cause
 * naming the cap); one within it decodes as without the limit. */
static void check_capped(capped_fn decode, decode_fn plain, const char *body, size_t size)
{
	struct decoded d, u;
	char err[FETCH_ERRLEN] = "", uerr[FETCH_ERRLEN] = "";
	const size_t limit = 3;

	set_hooks(size);
	int rc = decode(body, size, 0, limit, &d, err);
	int urc = plain(body, size, 0, &u, uerr);
	cJSON_InitHooks(NULL);
	if (rc != -ENOMEM && urc != -ENOMEM) {
		if (urc == 0 && u.answered > limit) {
			FUZZ_CHECK(rc == -EBADMSG, "%zu records under a cap of %zu: rc %d", u.answered,
				   limit, rc);
			FUZZ_CHECK(d.n == 0 && d.recs == NULL, "a refused answer kept %zu records", d.n);
			fuzz_check_message(err, FETCH_ERRLEN);
		} else if (urc == 0) {
			FUZZ_CHECK(rc == 0 && d.n == u.n && d.answered == u.answered,
				   "within the cap: rc %d, %zu kept of %zu, unlimited %zu of %zu", rc,
				   d.n, d.answered, u.n, u.answered);
		}
	}
	decoded_free(&d);
	decoded_free(&u);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *body = malloc(size ? size : 1);

	if (!body)
		return 0;
	memcpy(body, data, size);
	check_answer(flowapi_decode_flows, body, size);
	check_answer(sna_decode_answer, body, size);
	check_capped(flowapi_decode_capped, flowapi_decode_flows, body, size);
	check_capped(sna_decode_capped, sna_decode_answer, body, size);
	free(body);
	return 0;
}
