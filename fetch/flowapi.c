/*
 * flowapi.c - the driver of the reference dialect, flowapi/1
 * (shared/docs/collector-api.md): one GET a window, times in ms, splits by
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

#define EXACT_MAX 9007199254740992.0	/* 2^53 */

/*
 * Memory for cJSON while a decoding thread parses an answer.  Half of
 * cJSON's time is malloc and free (engine-notes.md): a 10,000-record
 * answer is about 250,000 small nodes.  A decoding thread therefore parses
 * into a thread-local arena of large blocks, reset after each answer;
 * other threads (and anything outside a parse) use malloc.  cJSON's hooks
 * are process-wide, so the hooks look at the calling thread's arena.
 */
#ifndef FLOWAPI_ARENA_BLOCK	/* the fuzz build's are small: answers span many */
#define FLOWAPI_ARENA_BLOCK (8 << 20)
#endif
#define ARENA_BLOCK ((size_t)FLOWAPI_ARENA_BLOCK)

struct arena_block {
	struct arena_block *next;
	size_t used, size;
	char data[];
};

struct arena {
	struct arena_block *head;	/* current block first */
	bool active;
};

static __thread struct arena tl_arena;

static bool arena_owns(const struct arena *a, const void *p)
{
	for (const struct arena_block *b = a->head; b; b = b->next)
		if ((const char *)p >= b->data && (const char *)p < b->data + b->size)
			return true;
	return false;
}

static void *arena_malloc(size_t n)
{
	struct arena *a = &tl_arena;
	struct arena_block *b = a->head;

	if (!a->active)
		return malloc(n);
	n = (n + 15) & ~(size_t)15;
	if (!b || b->used + n > b->size) {
		/* a spare block (kept from an earlier answer) or a new one */
		struct arena_block **pp = &a->head, *spare = NULL;
		while (*pp && (*pp)->used != 0)
			pp = &(*pp)->next;
		if (*pp && (*pp)->size >= n) {
			spare = *pp;
			*pp = spare->next;
		} else {
			size_t size = n > ARENA_BLOCK ? n : ARENA_BLOCK;
			spare = malloc(sizeof(*spare) + size);
			if (!spare)
				return NULL;
			spare->size = size;
			spare->used = 0;
		}
		spare->next = a->head;
		a->head = spare;
		b = spare;
	}
	void *p = b->data + b->used;
	b->used += n;
	return p;
}

static void arena_free(void *p)
{
	if (!p)
		return;
	if (tl_arena.active ? arena_owns(&tl_arena, p) : false)
		return;
	free(p);
}

static void fetch_arena_end(void);

cJSON *fetch_arena_parse(const char *body, size_t len)
{
	tl_arena.active = true;
	return cJSON_ParseWithLength(body, len);
}

/* A tree in the arena goes with it; one parsed without the hooks
 * (flowapi_init_hooks not called) is freed the usual way. */
void fetch_arena_release(cJSON *root)
{
	if (root && !arena_owns(&tl_arena, root))
		cJSON_Delete(root);
	fetch_arena_end();
}

static void fetch_arena_end(void)
{
	struct arena_block *b = tl_arena.head, *keep = NULL;

	tl_arena.active = false;
	/* keep at most two blocks for the next answer */
	for (int i = 0; b; i++) {
		struct arena_block *next = b->next;
		if (i < 2) {
			b->used = 0;
			b->next = keep;
			keep = b;
		} else {
			free(b);
		}
		b = next;
	}
	tl_arena.head = keep;
}

void flowapi_thread_done(void)
{
	fetch_community_done();
	fetch_arena_end();
	for (struct arena_block *b = tl_arena.head, *n; b; b = n) {
		n = b->next;
		free(b);
	}
	tl_arena.head = NULL;
}

void flowapi_init_hooks(void)
{
	cJSON_Hooks h = {arena_malloc, arena_free};
	cJSON_InitHooks(&h);
}

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

/* An integer item: -ENOENT when missing or null, -EINVAL when not an
 * integer in [lo, hi]. */
int fetch_json_int(const cJSON *it, double lo, double hi, int64_t *out)
{
	double v;

	if (!it || cJSON_IsNull(it))
		return -ENOENT;
	if (!cJSON_IsNumber(it))
		return -EINVAL;
	v = it->valuedouble;
	if (!(v >= lo && v <= hi) || v != floor(v) || v > EXACT_MAX)
		return -EINVAL;
	*out = (int64_t)v;
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
	if (get_int(root, "now", 0, EXACT_MAX, &x) == 0)
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

int fetch_lookup_add(struct cache_lookup **rows, size_t *n, size_t *cap,
		   const struct cache_lookup *r)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 64;
		struct cache_lookup *v = realloc(*rows, c * sizeof(*v));
		if (!v)
			return -ENOMEM;
		*rows = v;
		*cap = c;
	}
	(*rows)[(*n)++] = *r;
	return 0;
}

/*
 * Strings a NUL cuts.  cJSON keeps a string as a C string and keeps no
 * length, so a "\u0000" escape in it (or a raw NUL byte, which cJSON copies
 * as it is) ends it early: "a\u0000x" and "a\u0000y" both decode to "a",
 * and "10.0.0.1\u0000junk" to a valid address.  The tree cannot tell; the
 * body can.  fetch_json_cuts reads the body as cJSON's parse_string does:
 * outside a string a '"' opens one (in a JSON text that cJSON parsed, a
 * quote appears nowhere else); inside it a backslash takes the next byte
 * along and a '"' closes it.  It numbers the strings in the order they
 * appear, keys included, which is the order in which cJSON parses them into
 * the tree (a member's key, then its value; an array's items in turn), so a
 * walk of the tree in document order meets the Nth string of the body at
 * the Nth string it counts.  (Text after the root value, which cJSON
 * ignores, comes after all of the tree's strings and shifts nothing.)  The
 * walk records the nodes whose key or value was cut.  A body with no NUL
 * byte and no "\u0000" at all, nearly every answer, costs one memchr and
 * one scan of its backslashes, and no walk.
 */

/* Does body hold a NUL byte, or a backslash followed by "u0000"?  (A
 * superset of the cut strings: the exact scan is for bodies that do.) */
static bool json_may_cut(const char *body, size_t len)
{
	const char *p = body, *end = body + len;

	if (memchr(body, '\0', len))
		return true;
	while ((p = memchr(p, '\\', (size_t)(end - p))) != NULL) {
		if (end - p >= 6 && memcmp(p + 1, "u0000", 5) == 0)
			return true;
		p++;
	}
	return false;
}

/* The ordinals (in document order) of the strings of body that a NUL cuts,
 * ascending, into *at (malloc'd; NULL when none).  0 or -ENOMEM. */
static int json_cut_ordinals(const char *body, size_t len, size_t **at, size_t *n)
{
	size_t ord = 0, cap = 0;

	*at = NULL;
	*n = 0;
	for (size_t i = 0; i < len; i++) {
		bool cut = false;
		if (body[i] != '"')
			continue;
		for (i++; i < len && body[i] != '"'; i++) {
			if (body[i] == '\0') {
				cut = true;
			} else if (body[i] == '\\') {
				if (len - i >= 6 && memcmp(body + i + 1, "u0000", 5) == 0)
					cut = true;
				i++;
			}
		}
		if (cut) {
			if (*n == cap) {
				size_t c = cap ? cap * 2 : 16;
				size_t *v = realloc(*at, c * sizeof(*v));
				if (!v) {
					free(*at);
					*at = NULL;
					*n = 0;
					return -ENOMEM;
				}
				*at = v;
				cap = c;
			}
			(*at)[(*n)++] = ord;
		}
		ord++;
	}
	return 0;
}

struct cut_walk {
	const size_t *at;	/* the cut ordinals, ascending */
	size_t n, k;		/* how many; the next to meet */
	size_t ord;		/* strings counted so far */
	struct fetch_cuts *out;
	size_t cap;		/* of out->v */
	int rc;
};

/* Count one string; true when it is the next cut one. */
static bool cut_next(struct cut_walk *w)
{
	if (w->k < w->n && w->at[w->k] == w->ord++) {
		w->k++;
		return true;
	}
	return false;
}

/* node, its next siblings and their descendants in document order; a node
 * whose key or value is cut goes into w->out.  Stops once every cut string
 * is met, or on -ENOMEM (in w->rc). */
static void cut_walk(const cJSON *node, struct cut_walk *w)
{
	for (; node && w->k < w->n && !w->rc; node = node->next) {
		bool cut = node->string && cut_next(w);
		if (cJSON_IsString(node) && cut_next(w))
			cut = true;
		if (cut) {
			struct fetch_cuts *c = w->out;
			if (c->n == w->cap) {
				size_t nc = w->cap ? w->cap * 2 : 16;
				const cJSON **v = realloc(c->v, nc * sizeof(*v));
				if (!v) {
					w->rc = -ENOMEM;
					return;
				}
				c->v = v;
				w->cap = nc;
			}
			c->v[c->n++] = node;
		}
		cut_walk(node->child, w);
	}
}

static int cut_cmp(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t) * (const cJSON *const *)a, y = (uintptr_t) * (const cJSON *const *)b;
	return x < y ? -1 : x > y;
}

int fetch_json_cuts(const char *body, size_t len, const cJSON *root, struct fetch_cuts *c)
{
	struct cut_walk w = {.out = c};
	size_t *at;
	int rc;

	c->v = NULL;
	c->n = 0;
	if (!root || !body || !json_may_cut(body, len))
		return 0;
	rc = json_cut_ordinals(body, len, &at, &w.n);
	if (rc)
		return rc;
	w.at = at;
	cut_walk(root, &w);	/* a parsed root has no siblings */
	free(at);
	if (w.rc) {
		fetch_cuts_free(c);
		return w.rc;
	}
	/* sorted by address for fetch_json_cut's bsearch: a hostile answer may
	 * cut a string in each of its records */
	if (c->n > 1)
		qsort(c->v, c->n, sizeof(*c->v), cut_cmp);
	return 0;
}

bool fetch_json_cut_node(const struct fetch_cuts *c, const cJSON *node)
{
	return c && c->n && node && bsearch(&node, c->v, c->n, sizeof(*c->v), cut_cmp);
}

bool fetch_json_cut(const struct fetch_cuts *c, const cJSON *node)
{
	if (!c || c->n == 0 || !node)
		return false;
	if (fetch_json_cut_node(c, node))
		return true;
	for (const cJSON *ch = node->child; ch; ch = ch->next)
		if (fetch_json_cut(c, ch))
			return true;
	return false;
}

void fetch_cuts_free(struct fetch_cuts *c)
{
	free(c->v);
	c->v = NULL;
	c->n = 0;
}

/* Copy a JSON string into a fixed field; false when missing or too long. */
bool fetch_json_str(const cJSON *o, const char *key, char *dst, size_t len)
{
	const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, key);

	if (!cJSON_IsString(s) || strlen(s->valuestring) >= len)
		return false;
	strcpy(dst, s->valuestring);
	return true;
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

int fetch_json_addr(const cJSON *s, uint8_t out[16])
{
	struct in_addr v4;

	if (!cJSON_IsString(s) || strlen(s->valuestring) > 45)
		return -EINVAL;
	if (inet_pton(AF_INET, s->valuestring, &v4) == 1) {
		memset(out, 0, 10);
		out[10] = out[11] = 0xff;
		memcpy(out + 12, &v4, 4);
		return 0;
	}
	return inet_pton(AF_INET6, s->valuestring, out) == 1 ? 0 : -EINVAL;
}

int fetch_json_groups(const cJSON *arr, uint32_t *out, uint8_t *n)
{
	const cJSON *it;

	*n = 0;
	if (!arr || cJSON_IsNull(arr))
		return 0;
	if (!cJSON_IsArray(arr))
		return -EINVAL;
	cJSON_ArrayForEach(it, arr) {
		double v = cJSON_IsNumber(it) ? it->valuedouble : -1;
		if (*n == CACHE_GROUPS_MAX || !(v >= 0 && v <= 4294967295.0) || v != floor(v))
			return -EINVAL;
		out[(*n)++] = (uint32_t)v;
	}
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
	if (fetch_json_int(it[F_START], 0, EXACT_MAX, &f->start_ms)) {
		snprintf(why, len, "record %.64s: bad or missing start", f->id);
		return -EINVAL;
	}
	int rc = fetch_json_int(it[F_END], 0, EXACT_MAX, &v);
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
	OPT(F_PKTS, 0, EXACT_MAX, f->pkts, 0);
	OPT(F_BYTES, 0, EXACT_MAX, f->bytes, 0);
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
	if (fetch_json_int(it[F_START], 0, EXACT_MAX, &f->start_ms) ||
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
 * The array is counted before anything is allocated for its records: an
 * answer of more records than were asked for (out->limit) is not what the
 * collector may send (a hostile one would make this allocate about 700
 * bytes for every 3 bytes of "{},"), and is refused whole.
 */
int fetch_decode_array(const cJSON *arr, const struct fetch_cuts *cuts, struct decoded *out,
		       fetch_rec_fn one)
{
	size_t n = (size_t)cJSON_GetArraySize(arr);
	const cJSON *it;

	if (out->limit && n > out->limit) {
		out->answered = n;
		snprintf(out->why, sizeof(out->why),
			 "an answer of %zu records, more than the %zu asked for (the cap, max_records)",
			 n, out->limit);
		return -EBADMSG;
	}
	out->recs = malloc((n ? n : 1) * sizeof(*out->recs));
	if (!out->recs)
		return -ENOMEM;
	out->sampled = out->sample_at && n >= out->sample_at;
	cJSON_ArrayForEach(it, arr) {
		char why[160];
		out->answered++;
		if (fetch_json_cut(cuts, it)) {
			/* its id, an address or a key would be read cut short:
			 * two records could become one */
			snprintf(why, sizeof(why), "a record with a NUL (\\u0000) in a string");
		} else if (one(it, &out->recs[out->n], out->sampled, why, sizeof(why)) == 0) {
			out->n++;
			continue;
		}
		if (!out->rejected)
			snprintf(out->why, sizeof(out->why), "%s", why);
		out->rejected++;
	}
	return 0;
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

void decoded_free(struct decoded *d)
{
	free(d->recs);
	memset(d, 0, sizeof(*d));
}

static int fa_window_next(struct driver *d, const struct http_resp *resp, struct driver_win *w,
			  struct http_ask *a, struct decoded *out, char *err)
{
	(void)d;
	(void)w;
	(void)a;
	return flowapi_decode_capped(resp->body, resp->len, out->sample_at, out->limit, out, err);
}

const struct driver_ops flowapi_driver = {
	.name = "flowapi",
	.granularity_ms = 1,
	.max_window_ms = 31LL * 86400000,
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
};
