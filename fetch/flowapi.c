/*
 * flowapi.c - the driver of the reference dialect, flowapi/1
 * (docs/collector-api.md): one GET a window, times in ms, splits by
 * peer prefix.
 *
 * The decoder trusts nothing.  A record with a missing required field
 * (id, start, src, dst), a field of the wrong type, a number out of range
 * or not an integer, an over-long string, or a string that a NUL ("\u0000")
 * would cut short (fetch_json_cuts) is rejected whole and counted, never
 * stored half-read.  Numbers must be integers no larger than 2^53:
 * cJSON holds numbers as doubles, and a larger value could not be stored
 * exactly (no flow counter reaches 9 petabytes).  Unknown fields are
 * ignored, as the dialect requires.
 */
#include "fetch_i.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct driver {
	char base[2048];
};

static int fa_open(struct driver **out, const struct fetch_opts *o, char *err)
{
	struct driver *d = calloc(1, sizeof(*d));
	const char *base_url = o->url;
	size_t n;

	if (!d)
		return -ENOMEM;
	n = strlen(base_url);
	if (n == 0 || n >= sizeof(d->base) - 64) {
		snprintf(err, FETCH_ERRLEN, "the collector URL is empty or too long");
		free(d);
		return -EINVAL;
	}
	memcpy(d->base, base_url, n + 1);
	while (n > 0 && d->base[n - 1] == '/')
		d->base[--n] = '\0';
	if (n >= 7 && strcmp(d->base + n - 7, "/api/v1") == 0)
		d->base[n - 7] = '\0';
	*out = d;
	return 0;
}

static void fa_close(struct driver *d)
{
	free(d);
}

static int fa_info_ask(struct driver *d, struct http_ask *a)
{
	memset(a, 0, sizeof(*a));
	snprintf(a->url, sizeof(a->url), "%s/api/v1/info", d->base);
	return 0;
}

static int get_int(const cJSON *o, const char *key, double lo, double hi, int64_t *out)
{
	return fetch_json_int(cJSON_GetObjectItemCaseSensitive(o, key), lo, hi, out);
}

static int fa_info_decode(struct driver *d, const char *body, size_t len,
			  struct fetch_info *info, char *err)
{
	cJSON *root = cJSON_ParseWithLength(body, len);
	const cJSON *p, *v;
	int64_t x;
	int rc = -EPROTO;

	(void)d;
	memset(info, 0, sizeof(*info));
	if (!cJSON_IsObject(root)) {
		snprintf(err, FETCH_ERRLEN, "the collector's /info is not JSON: is this a flowapi/1 collector?");
		goto out;
	}
	p = cJSON_GetObjectItemCaseSensitive(root, "product");
	if (!cJSON_IsString(p) || strlen(p->valuestring) >= sizeof(info->product)) {
		snprintf(err, FETCH_ERRLEN, "the collector's /info has no product name");
		goto out;
	}
	strcpy(info->product, p->valuestring);
	v = cJSON_GetObjectItemCaseSensitive(root, "version");
	if (cJSON_IsString(v))
		snprintf(info->version, sizeof(info->version), "%s", v->valuestring);
	snprintf(info->dialect, sizeof(info->dialect), "flowapi/1");
	if (get_int(root, "max_records", 1, 10000000, &x) == 0)
		info->max_records = (uint32_t)x;
	/* 0: not stated, so no past day is refused (the fronts list 90) */
	info->retention_days = get_int(root, "retention_days", 1, 36500, &x) == 0 ? (int)x : 0;
	info->export_delay_s = get_int(root, "export_delay_s", 0, 86400, &x) == 0 ? (int)x : 300;
	if (get_int(root, "now", 0, FETCH_EXACT_MAX, &x) == 0)
		info->now_ms = x;
	rc = 0;
out:
	cJSON_Delete(root);
	return rc;
}

static const char *const lookup_paths[CACHE_NTABLES] = {
	"applications", "hostgroups", "exporters", "exporters",
};

static int fa_lookup_ask(struct driver *d, enum cache_table t, struct http_ask *a)
{
	memset(a, 0, sizeof(*a));
	snprintf(a->url, sizeof(a->url), "%s/api/v1/%s", d->base, lookup_paths[t]);
	return 1;
}

static int fa_lookup_decode(struct driver *d, enum cache_table t, const char *body,
			    size_t len, struct cache_lookup **rows, size_t *n, char *err)
{
	cJSON *root = cJSON_ParseWithLength(body, len);
	struct fetch_cuts cuts = {0};
	const cJSON *arr, *it;
	size_t cap = 0;
	int rc = 0;

	(void)d;
	*rows = NULL;
	*n = 0;
	arr = root ? cJSON_GetObjectItemCaseSensitive(root, lookup_paths[t]) : NULL;
	if (!cJSON_IsArray(arr)) {
		snprintf(err, FETCH_ERRLEN, "/api/v1/%s: not the expected JSON", lookup_paths[t]);
		cJSON_Delete(root);
		return -EBADMSG;
	}
	if ((rc = fetch_json_cuts(body, len, root, &cuts)))
		goto out;
	if (fetch_json_cut_node(&cuts, arr)) {
		snprintf(err, FETCH_ERRLEN, "/api/v1/%s: its key holds a NUL", lookup_paths[t]);
		rc = -EBADMSG;
		goto out;
	}
	cJSON_ArrayForEach(it, arr) {
		struct cache_lookup r;
		int64_t id, x;

		memset(&r, 0, sizeof(r));
		/* an item holding a string a NUL cuts is skipped, as one whose
		 * name is missing or too long (an exporter's with all its
		 * interfaces): its ids show as numbers */
		if (fetch_json_cut(&cuts, it) || get_int(it, "id", 0, 4294967295.0, &id))
			continue;	/* a row we cannot key is skipped: ids then show as numbers */
		r.key = id;
		if (t == CACHE_IFS) {
			const cJSON *ifs = cJSON_GetObjectItemCaseSensitive(it, "interfaces"), *f;
			if (!cJSON_IsArray(ifs))
				continue;
			cJSON_ArrayForEach(f, ifs) {
				struct cache_lookup ir;
				memset(&ir, 0, sizeof(ir));
				ir.key = id;
				if (get_int(f, "ifindex", 0, 4294967295.0, &ir.key2) ||
				    !fetch_json_str(f, "name", ir.name, sizeof(ir.name)))
					continue;
				fetch_json_str(f, "description", ir.extra, sizeof(ir.extra));
				if ((rc = fetch_lookup_add(rows, n, &cap, &ir)))
					goto out;
			}
			continue;
		}
		if (!fetch_json_str(it, "name", r.name, sizeof(r.name)))
			continue;
		if (t == CACHE_GROUPS && get_int(it, "parent", 0, 4294967295.0, &x) == 0)
			r.key2 = x;
		if (t == CACHE_EXPORTERS)
			fetch_json_str(it, "address", r.extra, sizeof(r.extra));
		if ((rc = fetch_lookup_add(rows, n, &cap, &r)))
			goto out;
	}
out:
	fetch_cuts_free(&cuts);
	cJSON_Delete(root);
	if (rc) {
		free(*rows);
		*rows = NULL;
		*n = 0;
	}
	return rc;
}

/* Percent-encode the characters of an address or prefix that a query
 * string must not carry raw. */
static void encode(const char *in, char *out, size_t len)
{
	size_t o = 0;

	for (; *in && o + 4 < len; in++) {
		if (*in == '/' || *in == ':' || *in == '%' || *in == '+') {
			snprintf(out + o, len - o, "%%%02X", (unsigned char)*in);
			o += 3;
		} else {
			out[o++] = *in;
		}
	}
	out[o] = '\0';
}

static int fa_window_first(struct driver *d, const struct cache_query *q,
			   const struct plan_req *r, uint32_t limit, struct driver_win *w,
			   struct http_ask *a)
{
	char ip[64], eip[200], peer[64], epeer[200];

	(void)w;
	memset(a, 0, sizeof(*a));
	cache_prefix_format(&q->subject, ip, sizeof(ip));
	encode(ip, eip, sizeof(eip));
	if (r->has_peer) {
		cache_prefix_format(&r->peer, peer, sizeof(peer));
		encode(peer, epeer, sizeof(epeer));
	}
	snprintf(a->url, sizeof(a->url), "%s/api/v1/flows?ip=%s&start=%lld&end=%lld&limit=%u%s%s",
		 d->base, eip, (long long)r->start, (long long)r->end, limit,
		 r->has_peer ? "&peer=" : "", r->has_peer ? epeer : "");
	return 0;
}

/* The fields of a record, found in one pass over its members (a lookup by
 * name per field would walk the member list twenty times). */
enum {
	F_ID, F_START, F_END, F_SRC, F_DST, F_SPORT, F_DPORT, F_PROTO, F_PKTS,
	F_BYTES, F_FLAGS, F_ITYPE, F_ICODE, F_INIF, F_OUTIF, F_EXPORTER, F_APP,
	F_SRCG, F_DSTG, F_SRCAS, F_DSTAS, F_SAMPLING, F_N
};

static const char *const field_names[F_N] = {
	"id", "start", "end", "src", "dst", "sport", "dport", "proto", "pkts",
	"bytes", "tcp_flags", "icmp_type", "icmp_code", "in_if", "out_if",
	"exporter", "app", "src_groups", "dst_groups", "src_as", "dst_as", "sampling",
};

static int field_of(const char *k)
{
	/* candidates by length, as field + 1 (0 ends a list): one strlen and
	 * usually one memcmp a member, on the decoders' hottest path */
#define C(x) ((x) + 1)
	static const unsigned char by_len[11][7] = {
		[2] = {C(F_ID)},
		[3] = {C(F_SRC), C(F_DST), C(F_END), C(F_APP)},
		[4] = {C(F_PKTS)},
		[5] = {C(F_START), C(F_SPORT), C(F_DPORT), C(F_PROTO), C(F_BYTES), C(F_INIF)},
		[6] = {C(F_SRCAS), C(F_DSTAS), C(F_OUTIF)},
		[8] = {C(F_EXPORTER), C(F_SAMPLING)},
		[9] = {C(F_FLAGS), C(F_ITYPE), C(F_ICODE)},
		[10] = {C(F_SRCG), C(F_DSTG)},
	};
#undef C
	size_t n = strnlen(k, 11);

	if (n > 10)
		return -1;
	const unsigned char *c = by_len[n];
	for (int i = 0; i < 7 && c[i]; i++) {
		const char *name = field_names[c[i] - 1];
		if (name[0] == k[0] && memcmp(k, name, n) == 0)
			return c[i] - 1;
	}
	return -1;
}

/* A record's known members by field, in one pass over them (the first of
 * duplicate keys, as cJSON does).  -EINVAL for a record not an object. */
static int index_members(const cJSON *o, const cJSON *it[F_N], char *why, size_t len)
{
	if (!cJSON_IsObject(o)) {
		snprintf(why, len, "a record that is not an object");
		return -EINVAL;
	}
	for (const cJSON *m = o->child; m; m = m->next) {
		int k = m->string ? field_of(m->string) : -1;
		if (k >= 0 && !it[k])
			it[k] = m;
	}
	return 0;
}

/* An optional integer field: -1 when missing, 'zero_unknown' maps 0 to -1. */
#define OPT(fld, lo, hi, dst, zero_unknown)                                    \
	do {                                                                   \
		int64_t _v;                                                    \
		int _r = fetch_json_int(it[fld], lo, hi, &_v);                       \
		if (_r == -EINVAL) {                                           \
			snprintf(why, len, "record %.64s: bad %s", f->id,      \
				 field_names[fld]);                            \
			return -EINVAL;                                        \
		}                                                              \
		(dst) = _r ? -1 : ((zero_unknown) && _v == 0 ? -1 : _v);       \
	} while (0)

int flowapi_decode_record(const cJSON *o, struct flow_rec *f, char *why, size_t len)
{
	const cJSON *it[F_N] = {0}, *id;
	int64_t v;

	if (index_members(o, it, why, len))
		return -EINVAL;
	id = it[F_ID];
	if (!cJSON_IsString(id) || id->valuestring[0] == '\0' ||
	    strlen(id->valuestring) > CACHE_ID_MAX) {
		snprintf(why, len, "a record without a valid id");
		return -EINVAL;
	}
	for (const char *c = id->valuestring; *c; c++) {
		if ((unsigned char)*c <= ' ' || *c == ',' || *c == '"' || (unsigned char)*c >= 0x7f) {
			snprintf(why, len, "a record id with a forbidden character");
			return -EINVAL;
		}
	}
	strcpy(f->id, id->valuestring);
	f->extra[0] = '\0';	/* the reference record has nothing beyond the columns */
	if (fetch_json_int(it[F_START], 0, FETCH_EXACT_MAX, &f->start_ms)) {
		snprintf(why, len, "record %.64s: bad or missing start", f->id);
		return -EINVAL;
	}
	int rc = fetch_json_int(it[F_END], 0, FETCH_EXACT_MAX, &v);
	if (rc == -EINVAL || (rc == 0 && v < f->start_ms)) {
		snprintf(why, len, "record %.64s: bad end", f->id);
		return -EINVAL;
	}
	f->end_ms = rc ? f->start_ms : v;
	if (fetch_json_addr(it[F_SRC], f->src) || fetch_json_addr(it[F_DST], f->dst)) {
		snprintf(why, len, "record %.64s: bad or missing src/dst", f->id);
		return -EINVAL;
	}
	int64_t sport, dport, proto, flags, itype, icode;
	OPT(F_SPORT, 0, 65535, sport, 0);
	OPT(F_DPORT, 0, 65535, dport, 0);
	OPT(F_PROTO, 0, 255, proto, 0);
	OPT(F_FLAGS, 0, 255, flags, 0);
	OPT(F_ITYPE, 0, 255, itype, 0);
	OPT(F_ICODE, 0, 255, icode, 0);
	OPT(F_PKTS, 0, FETCH_EXACT_MAX, f->pkts, 0);
	OPT(F_BYTES, 0, FETCH_EXACT_MAX, f->bytes, 0);
	OPT(F_INIF, 0, 4294967295.0, f->in_if, 1);
	OPT(F_OUTIF, 0, 4294967295.0, f->out_if, 1);
	OPT(F_EXPORTER, 0, 4294967295.0, f->exporter, 0);
	OPT(F_APP, 0, 4294967295.0, f->app, 1);
	OPT(F_SRCAS, 0, 4294967295.0, f->src_as, 1);
	OPT(F_DSTAS, 0, 4294967295.0, f->dst_as, 1);
	OPT(F_SAMPLING, 1, 4294967295.0, f->sampling, 0);
	f->sport = (int32_t)sport;
	f->dport = (int32_t)dport;
	f->proto = (int32_t)proto;
	bool icmp = proto == 1 || proto == 58;
	f->tcp_flags = proto == 6 ? (int32_t)flags : -1;
	f->icmp_type = icmp ? (int32_t)itype : -1;
	f->icmp_code = icmp ? (int32_t)icode : -1;
	/* ports only where the protocol has them (TCP, UDP, DCCP, UDP-Lite,
	 * SCTP): elsewhere the collector's 0 means "none" */
	if (proto != 6 && proto != 17 && proto != 33 && proto != 136 && proto != 132 &&
	    proto >= 0 && f->sport == 0 && f->dport == 0)
		f->sport = f->dport = -1;
	if (fetch_json_groups(it[F_SRCG], f->src_groups, &f->nsrc_groups) ||
	    fetch_json_groups(it[F_DSTG], f->dst_groups, &f->ndst_groups)) {
		snprintf(why, len, "record %.64s: bad host groups", f->id);
		return -EINVAL;
	}
	fetch_community_id(f, 0, f->community_id);
	return 0;
}

/* The part of a record that a sample needs (its start and addresses),
 * checked as strictly as flowapi_decode_record checks them. */
static int decode_sample(const cJSON *o, struct flow_rec *f, char *why, size_t len)
{
	const cJSON *it[F_N] = {0};

	if (index_members(o, it, why, len))
		return -EINVAL;
	f->id[0] = '\0';
	if (fetch_json_int(it[F_START], 0, FETCH_EXACT_MAX, &f->start_ms) ||
	    fetch_json_addr(it[F_SRC], f->src) || fetch_json_addr(it[F_DST], f->dst)) {
		snprintf(why, len, "a record with a bad start, src or dst");
		return -EINVAL;
	}
	return 0;
}

/* A flowapi/1 record, whole or as a sample. */
static int fa_record(const cJSON *o, struct flow_rec *f, bool sample, char *why, size_t len)
{
	return sample ? decode_sample(o, f, why, len) : flowapi_decode_record(o, f, why, len);
}

/*
 * Parse an answer into out (records in answer order).  With the hooks in
 * place cJSON's nodes live in this thread's arena and are released all at
 * once by fetch_arena_end, so the tree is never walked to be freed (cJSON_Delete
 * was 5% of a cold query).
 */
int flowapi_decode_flows(const char *body, size_t len, size_t sample_at, struct decoded *out,
			 char *err)
{
	return flowapi_decode_capped(body, len, sample_at, 0, out, err);
}

int flowapi_decode_capped(const char *body, size_t len, size_t sample_at, size_t limit,
			  struct decoded *out, char *err)
{
	struct fetch_cuts cuts = {0};
	cJSON *root;
	const cJSON *arr;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	out->sample_at = sample_at;
	out->limit = limit;
	root = fetch_arena_parse(body, len);
	if (!root) {
		/* at most the first 20 bytes: the body need not end in a NUL */
		snprintf(err, FETCH_ERRLEN, "an answer that is not JSON (%zu bytes, starting '%.*s')",
			 len, (int)(len < 20 ? len : 20), body ? body : "");
		for (char *c = err; *c; c++)
			if ((unsigned char)*c < ' ')
				*c = '?';
		rc = -EBADMSG;
		goto out;
	}
	arr = cJSON_GetObjectItemCaseSensitive(root, "flows");
	if (!cJSON_IsArray(arr)) {
		snprintf(err, FETCH_ERRLEN, "an answer without a \"flows\" array");
		rc = -EBADMSG;
		goto out;
	}
	rc = fetch_json_cuts(body, len, root, &cuts);
	if (rc == 0 && fetch_json_cut_node(&cuts, arr)) {
		/* "flows\u0000...": not the collector's "flows" */
		snprintf(err, FETCH_ERRLEN, "an answer whose \"flows\" key holds a NUL");
		rc = -EBADMSG;
	} else if (rc == 0) {
		rc = fetch_decode_array(arr, &cuts, out, fa_record);
		if (rc == -EBADMSG)
			snprintf(err, FETCH_ERRLEN, "%s", out->why);
	}
	fetch_cuts_free(&cuts);
out:
	fetch_arena_release(root);
	return rc;
}

static int fa_window_next(struct driver *d, const struct http_resp *resp, struct driver_win *w,
			  struct http_ask *a, struct decoded *out, char *err)
{
	(void)d;
	(void)w;
	(void)a;
	return flowapi_decode_capped(resp->body, resp->len, out->sample_at, out->limit, out, err);
}

/* flowapi/1's error body: {"error": "..."}. */
static void fa_error_text(struct driver *d, const struct http_resp *resp, char *buf, size_t len)
{
	cJSON *root = fetch_error_json(resp);

	(void)d;
	fetch_error_message(root ? cJSON_GetObjectItemCaseSensitive(root, "error") : NULL, buf, len);
	cJSON_Delete(root);
}

const struct driver_ops flowapi_driver = {
	.granularity_ms = 1,
	.max_window_ms = 31 * CACHE_DAY_MS,
	.split_dims = FETCH_SPLIT_PEER,
	.record_max = 4096,	/* flowsim's records: 309 bytes on average, 392 at most */
	.open = fa_open,
	.close = fa_close,
	.info_ask = fa_info_ask,
	.info_decode = fa_info_decode,
	.lookup_ask = fa_lookup_ask,
	.lookup_decode = fa_lookup_decode,
	.window_first = fa_window_first,
	.window_next = fa_window_next,
	.error_text = fa_error_text,
};
