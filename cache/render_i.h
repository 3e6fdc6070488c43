/*
 * render_i.h - what the renderers share: one row turned into the 25 fields
 * of flows.csv (docs/design.md, "flows.csv") (render.c decides every field's content, once),
 * an output buffer, and the three writers (CSV, NDJSON, SQLite) that only
 * decide how a field is spelled.
 */
#ifndef FLOWFS_RENDER_I_H
#define FLOWFS_RENDER_I_H

#include <errno.h>
#include <string.h>

#include "cache_i.h"

#define RENDER_NCOLS 25

/* How a field is spelled by each writer. */
enum render_kind {
	RK_NULL,	/* unknown: empty in CSV, null in JSON, NULL in SQLite */
	RK_INT,		/* an integer: a JSON number, an SQLite INTEGER */
	RK_MS,		/* milliseconds shown as seconds "S.mmm": a JSON number, an SQLite REAL */
	RK_SAFE,	/* text that needs no quoting or escaping (times, addresses, ...) */
	RK_TEXT,	/* any other text (names, ids): quoted / escaped as needed */
};

struct render_field {
	uint8_t kind;
	uint32_t len;
	const char *s;	/* the text in every kind but RK_NULL */
	int64_t num;	/* the value for RK_INT and RK_MS */
};

/* The column names, in docs/design.md's order; the keys of flows.ndjson. */
extern const char *const render_columns[RENDER_NCOLS];

/* One lookup table in memory, sorted by (key, key2). */
struct render_map_entry {
	int64_t key, key2;
	char *name;
	uint32_t len;
};
#define RENDER_MEMO 64
struct render_memo {
	int64_t key, key2;	/* INT64_MIN: empty slot */
	const struct render_map_entry *e;	/* NULL: known to be absent */
};
struct render_map {
	struct render_map_entry *v;
	size_t n;
	/* a direct-mapped memo in front of the binary search: flows repeat the
	 * same exporter, interfaces and applications row after row */
	struct render_memo memo[RENDER_MEMO];
};

struct render_ctx {
	struct cache_tz tz;
	struct render_map map[CACHE_NTABLES];
};

/*
 * Start a render: a fresh zone cache after tzset(), a read transaction on
 * c's connection (one snapshot until render_end) and the lookup tables in
 * ctx's maps.  *out is malloc'd; on error nothing is left open.
 */
int render_begin(struct cache *c, struct render_ctx **out, char *err);
/* End the read transaction and free ctx (NULL: only end it). */
void render_end(struct cache *c, struct render_ctx *ctx);

/* Is text from the cache's lookup table a name this program could have
 * stored: at most CACHE_NAME_MAX bytes and no NUL?  Anything else was
 * planted or is corrupt, and is treated as no name at all. */
bool render_name_ok(const char *s, size_t len);

/* The first entry of map m with this key (and key2 when with_key2), or
 * NULL: the name flows.csv shows (a row with an empty name is not kept). */
const struct render_map_entry *render_find(struct render_map *m, int64_t key, int64_t key2,
					   bool with_key2);

/* Groups as flows.csv's srcGroups shows them: names from the map groups
 * (ctx->map[CACHE_GROUPS]) joined by ';', the id where a name is missing
 * (every id with groups NULL: the raw src_groups_ids of flows.sqlite); at
 * most cap bytes, cut before a group that would not fit with 20 bytes to
 * spare.  Returns the length. */
size_t render_groups_text(struct render_map *groups, const uint32_t *g, uint8_t n, char *out,
			  size_t cap);

/* A row's fields and the text they point into (names point into the maps). */
#define RENDER_ROWBUF 16384
struct render_row {
	struct render_field f[RENDER_NCOLS];
	size_t used;
	char buf[RENDER_ROWBUF];
};

/* Fill row from r.  Never fails: a field that would not fit is cut. */
void render_fields(struct render_ctx *ctx, const struct flow_rec *r,
		   struct render_row *row);

/* ---- the output buffer of the text formats -------------------------------- */

#define RENDER_OUTBUF (256 * 1024)
struct render_out {
	FILE *f;
	char *buf;
	size_t n;
	int err;	/* the first write error, as -errno; later writes are skipped */
};

/* Write out what is buffered; returns out->err. */
int render_flush(struct render_out *o);
/* render_flush, then fflush(o->f): 0, or the first write error as -errno
 * with "write: <cause>" in err (-EOVERFLOW: an item larger than the buffer). */
int render_finish(struct render_out *o, char *err);

/* Make room for len more bytes (flushing when needed); false on a write
 * error, and for an item longer than the whole buffer, which can never fit:
 * that is kept in o->err as -EOVERFLOW (the writers bound every item they
 * put, so it means a bug or a field that escaped its bound), and the render
 * fails with it rather than write past the buffer. */
static inline bool render_room(struct render_out *o, size_t len)
{
	if (RENDER_OUTBUF - o->n >= len)
		return true;
	if (len > RENDER_OUTBUF) {
		if (!o->err)
			o->err = -EOVERFLOW;
		return false;
	}
	return render_flush(o) == 0;
}

static inline void render_put(struct render_out *o, const char *s, size_t len)
{
	if (render_room(o, len)) {
		memcpy(o->buf + o->n, s, len);
		o->n += len;
	}
}

/* ---- the writers --------------------------------------------------------------- */

void render_csv_header(struct render_out *o);
/* One CSV field: RK_TEXT quoted (RFC 4180) when it holds ',', '"', CR or LF,
 * everything else as it is. */
void render_csv_field(struct render_out *o, const struct render_field *f);
void render_csv_row(struct render_out *o, const struct render_row *row);
void render_ndjson_row(struct render_out *o, const struct render_row *row);

/* Write the standalone database of q at path (see cache_render); the
 * caller holds the read transaction and has loaded ctx's maps. */
int render_sqlite(struct cache *c, struct render_ctx *ctx, const struct cache_query *q,
		  const char *path, const struct cache_meta *meta, size_t nmeta,
		  int64_t *rows, char *err);

/* Length of the valid UTF-8 sequence at s (at most len bytes), 0 if none:
 * overlong forms, surrogates and code points past U+10FFFF are invalid.
 * (render_ndjson.c; the SVG and text reports use it too.) */
size_t render_utf8_len(const unsigned char *s, size_t len);

#endif
