/*
 * json.c - what every driver of a JSON dialect shares: the decoding
 * threads' arena for cJSON, the strict readers of integers, addresses,
 * host group lists and strings, the detection of strings a NUL cuts
 * short, the loop over an answer's records, and the growing array of
 * lookup rows.  No dialect is named here: a driver passes its own record
 * decoder to fetch_decode_array.
 *
 * Numbers are taken only when they are integers no larger than 2^53
 * (FETCH_EXACT_MAX): cJSON holds numbers as doubles, and a larger value
 * could not be stored exactly.
 */
#include "arr.h"
#include "fetch_i.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Memory for cJSON while a decoding thread parses an answer.  Half of
 * cJSON's time is malloc and free (docs/design.md,
 * "Measured facts"): a 10,000-record
 * answer is about 250,000 small nodes.  A decoding thread therefore parses
 * into a thread-local arena of large blocks, reset after each answer;
 * other threads (and anything outside a parse) use malloc.  cJSON's hooks
 * are process-wide, so the hooks look at the calling thread's arena.
 */
#ifndef FETCH_ARENA_BLOCK	/* the fuzz build's are small: answers span many */
#define FETCH_ARENA_BLOCK (8 << 20)
#endif
#define ARENA_BLOCK ((size_t)FETCH_ARENA_BLOCK)

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
 * (fetch_json_init_hooks not called) is freed the usual way. */
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

void fetch_json_thread_done(void)
{
	fetch_community_done();
	fetch_arena_end();
	for (struct arena_block *b = tl_arena.head, *n; b; b = n) {
		n = b->next;
		free(b);
	}
	tl_arena.head = NULL;
}

void fetch_json_init_hooks(void)
{
	cJSON_Hooks h = {arena_malloc, arena_free};
	cJSON_InitHooks(&h);
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
	if (!(v >= lo && v <= hi) || v != floor(v) || v > FETCH_EXACT_MAX)
		return -EINVAL;
	*out = (int64_t)v;
	return 0;
}

int fetch_lookup_add(struct cache_lookup **rows, size_t *n, size_t *cap,
		   const struct cache_lookup *r)
{
	if (arr_grow(rows, cap, *n + 1, sizeof(**rows)))
		return -ENOMEM;
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
			if (arr_grow(at, &cap, *n + 1, sizeof(**at))) {
				free(*at);
				*at = NULL;
				*n = 0;
				return -ENOMEM;
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
			if (arr_grow(&c->v, &w->cap, c->n + 1, sizeof(*c->v))) {
				w->rc = -ENOMEM;
				return;
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

cJSON *fetch_error_json(const struct http_resp *r)
{
	if (!r->body || r->len == 0 || r->len > 65536)
		return NULL;
	return cJSON_ParseWithLength(r->body, r->len);
}

void fetch_error_message(const cJSON *m, char *out, size_t len)
{
	out[0] = '\0';
	if (cJSON_IsString(m))
		cache_text_escape(out, len, m->valuestring, 200);
}

/* application/x-www-form-urlencoded (and URL query) spelling of s into out
 * (len bytes); false when it does not fit. */
bool fetch_form_encode(const char *s, char *out, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (o + 4 > len)
			return false;
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_' || c == '.' || c == '~') {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
	return true;
}
