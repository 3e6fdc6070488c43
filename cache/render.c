/*
 * render.c - a query's flows as the files users read: the entry point
 * (cache_render), the lookup tables in memory, and the one place that
 * decides what every column of flows.csv holds (docs/design.md,
 * "flows.csv").
 *
 * One SELECT in primary-key order streams the rows (no sort, no temporary
 * B-tree: test_cache checks the plan), each row is turned into 25 fields
 * here, and a writer (render_csv.c, render_ndjson.c) only spells them;
 * flows.sqlite makes the same decisions in SQL, through the same spellings
 * and maps (render_sqlite.c, checked against render_fields by test_render).
 * So the three files of a query folder always agree, field for field.  The lookup tables are read once per render into sorted arrays and
 * searched with bsearch: a JOIN per row would cost more than the row.  The
 * whole render runs in one read transaction, so it sees one snapshot of the
 * cache even while the engine writes, and its output depends on nothing but
 * that snapshot and the zone (TZ): the same state renders the same bytes.
 *
 * The text formats run on two threads (render_text_rows): this one steps
 * SQLite and decodes rows, a formatter writes them, in order, from a ring of
 * three batches of 2,048 rows.  Memory is flat: the batches, one row's
 * fields, one output buffer, the lookup tables.
 *
 * Measured (1,000,000 flows of one subject over a day, warm cache file,
 * TZ=Europe/Berlin, output to /dev/null, debugoptimized build, 2 vCPU Debian
 * 12 VM shared with other work): CSV 530,000-650,000 rows/s, NDJSON
 * 455,000-600,000 rows/s (flows.sqlite: see render_sqlite.c).  The target
 * was 400,000 rows/s for CSV (nfdump -o csv: 155,000 with TZ set).  The
 * per-row work that made it: bsearch behind a small memo for names, times
 * and addresses formatted by hand, one 256 KiB output buffer and no stdio
 * call per field; the rest is SQLite stepping the cursor (about a third).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "arr.h"
#include "render_i.h"

const char *const render_columns[RENDER_NCOLS] = {
	"firstSeen", "lastSeen", "duration", "proto", "srcAddr", "srcPort",
	"dstAddr", "dstPort", "flags", "packets", "bytes", "srcAS", "dstAS",
	"inIf", "outIf", "exporter", "app", "srcGroups", "dstGroups",
	"icmpType", "icmpCode", "sampling", "ts", "communityId", "flowId",
};

enum {
	F_FIRST, F_LAST, F_DURATION, F_PROTO, F_SRC, F_SPORT, F_DST, F_DPORT,
	F_FLAGS, F_PKTS, F_BYTES, F_SRCAS, F_DSTAS, F_INIF, F_OUTIF, F_EXPORTER,
	F_APP, F_SRCGROUPS, F_DSTGROUPS, F_ICMPTYPE, F_ICMPCODE, F_SAMPLING, F_TS,
	F_COMMUNITY, F_FLOWID,
};

/* ---- lookup tables in memory ------------------------------------------------- */

static void render_maps_free(struct render_ctx *ctx)
{
	for (int t = 0; t < CACHE_NTABLES; t++) {
		for (size_t i = 0; i < ctx->map[t].n; i++)
			free(ctx->map[t].v[i].name);
		free(ctx->map[t].v);
		ctx->map[t].v = NULL;
		ctx->map[t].n = 0;
	}
}

bool render_name_ok(const char *s, size_t len)
{
	return len <= CACHE_NAME_MAX && (len == 0 || !memchr(s, '\0', len));
}

/*
 * Read every lookup table (ordered by table, key, key2, so each array comes
 * out sorted).  Only rows with a non-empty name are kept: an empty name
 * renders as the number anyway.  So are only names this program could have
 * stored (render_name_ok): a longer one (a planted row of 200 KiB) is never
 * loaded, and its id renders as the number, as an id without a name does.
 * -ENOMEM or an SQLite error; the maps are then empty.
 */
static int render_maps_load(struct cache *c, struct render_ctx *ctx, char *err)
{
	sqlite3_stmt *st = c->st[ST_LOOKUP_SELECT];
	size_t cap[CACHE_NTABLES] = {0};
	int rc;

	for (int t = 0; t < CACHE_NTABLES; t++)
		for (int i = 0; i < RENDER_MEMO; i++)
			ctx->map[t].memo[i].key = INT64_MIN;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int t = sqlite3_column_int(st, 0);
		const unsigned char *name = sqlite3_column_text(st, 3);
		int len = sqlite3_column_bytes(st, 3);
		struct render_map *m;
		if (t < 0 || t >= CACHE_NTABLES || !name || len <= 0 ||
		    !render_name_ok((const char *)name, (size_t)len))
			continue;
		m = &ctx->map[t];
		if (arr_grow(&m->v, &cap[t], m->n + 1, sizeof(*m->v)))
			goto nomem;
		struct render_map_entry *e = &m->v[m->n];
		e->key = sqlite3_column_int64(st, 1);
		e->key2 = sqlite3_column_int64(st, 2);
		e->name = malloc((size_t)len + 1);
		if (!e->name)
			goto nomem;
		memcpy(e->name, name, (size_t)len + 1);
		e->len = (uint32_t)len;
		m->n++;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		rc = cache_sqlite_fail(c->db, rc, err, "read lookup tables");
		render_maps_free(ctx);
		return rc;
	}
	return 0;
nomem:
	sqlite3_reset(st);
	render_maps_free(ctx);
	return cache_fail(err, -ENOMEM, "out of memory reading lookup tables");
}

/* The first entry with this key (and key2 when with_key2), or NULL. */
static const struct render_map_entry *render_search(const struct render_map *m, int64_t key,
						    int64_t key2, bool with_key2)
{
	size_t lo = 0, hi = m->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct render_map_entry *e = &m->v[mid];
		if (e->key < key || (e->key == key && with_key2 && e->key2 < key2))
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < m->n && m->v[lo].key == key && (!with_key2 || m->v[lo].key2 == key2))
		return &m->v[lo];
	return NULL;
}

/* render_search through the memo (keys are >= 0; key2 is 0 unless with_key2). */
const struct render_map_entry *render_find(struct render_map *m, int64_t key, int64_t key2,
					   bool with_key2)
{
	struct render_memo *s;

	if (!with_key2)
		key2 = 0;
	s = &m->memo[((uint64_t)key * 31 + (uint64_t)key2) % RENDER_MEMO];
	if (s->key != key || s->key2 != key2) {
		s->key = key;
		s->key2 = key2;
		s->e = render_search(m, key, key2, with_key2);
	}
	return s->e;
}

/* ---- fields -------------------------------------------------------------------------- */

static void render_null(struct render_row *row, int i)
{
	row->f[i].kind = RK_NULL;
	row->f[i].s = "";
	row->f[i].len = 0;
}

/* Point a field at text already in row->buf from 'start'. */
static void render_set(struct render_row *row, int i, uint8_t kind, size_t start)
{
	row->f[i].kind = kind;
	row->f[i].s = row->buf + start;
	row->f[i].len = (uint32_t)(row->used - start);
}

static void render_int(struct render_row *row, int i, int64_t v)
{
	size_t start = row->used;

	if (v < 0) {
		render_null(row, i);
		return;
	}
	row->used += cache_i64_text(v, row->buf + row->used);
	render_set(row, i, RK_INT, start);
	row->f[i].num = v;
}

/* A number shown as text (a name's stand-in): RK_SAFE. */
static void render_num_text(struct render_row *row, int i, int64_t v)
{
	size_t start = row->used;

	row->used += cache_i64_text(v, row->buf + row->used);
	render_set(row, i, RK_SAFE, start);
}

static void render_ms(struct render_row *row, int i, int64_t ms)
{
	size_t start = row->used;

	row->used += cache_secs_text(ms, row->buf + row->used);
	render_set(row, i, RK_MS, start);
	row->f[i].num = ms;
}

static void render_text(struct render_row *row, int i, const char *s, size_t len)
{
	row->f[i].kind = RK_TEXT;
	row->f[i].s = s;
	row->f[i].len = (uint32_t)len;
}

/* A looked-up name, else the number; unknown (< 0) is empty. */
static void render_name(struct render_row *row, int i, const struct render_map_entry *e,
			int64_t v)
{
	if (v < 0)
		render_null(row, i);
	else if (e)
		render_text(row, i, e->name, e->len);
	else
		render_num_text(row, i, v);
}

size_t render_groups_text(struct render_map *groups, const uint32_t *g, uint8_t n, char *out,
			  size_t cap)
{
	size_t len = 0;

	for (int k = 0; k < n && k < CACHE_GROUPS_MAX; k++) {
		const struct render_map_entry *e =
			groups ? render_find(groups, g[k], 0, false) : NULL;
		size_t need = (e ? e->len : 20) + 1;
		if (len + need > cap)
			break;
		if (k)
			out[len++] = ';';
		if (e) {
			memcpy(out + len, e->name, e->len);
			len += e->len;
		} else {
			len += cache_i64_text(g[k], out + len);
		}
	}
	return len;
}

/* Group names (ids where no name) joined by ';'; cut rather than overflow. */
static void render_groups(struct render_ctx *ctx, struct render_row *row, int i,
			  const uint32_t *g, uint8_t n)
{
	size_t start = row->used;

	if (n == 0) {
		render_null(row, i);
		return;
	}
	row->used += render_groups_text(&ctx->map[CACHE_GROUPS], g, n, row->buf + row->used,
					RENDER_ROWBUF - 512 - row->used);
	render_set(row, i, RK_TEXT, start);
}

/*
 * Every field of docs/design.md's flows.csv from one record: times through the
 * zone cache, names through the maps, the empty field for what the
 * collector did not say.
 */
void render_fields(struct render_ctx *ctx, const struct flow_rec *r,
		   struct render_row *row)
{
	const struct render_map_entry *e;
	size_t start;

	row->used = 0;
	start = row->used;
	row->used += cache_time_text(&ctx->tz, r->start_ms, row->buf + row->used);
	render_set(row, F_FIRST, RK_SAFE, start);
	if (r->end_ms >= 0) {
		start = row->used;
		row->used += cache_time_text(&ctx->tz, r->end_ms, row->buf + row->used);
		render_set(row, F_LAST, RK_SAFE, start);
		render_ms(row, F_DURATION, r->end_ms - r->start_ms);
	} else {
		render_null(row, F_LAST);
		render_null(row, F_DURATION);
	}
	if (r->proto < 0) {
		render_null(row, F_PROTO);
	} else {
		const char *pn = cache_proto_name(r->proto);
		if (pn) {
			row->f[F_PROTO].kind = RK_SAFE;
			row->f[F_PROTO].s = pn;
			row->f[F_PROTO].len = (uint32_t)strlen(pn);
		} else {
			render_num_text(row, F_PROTO, r->proto);
		}
	}
	start = row->used;
	row->used += cache_addr_text(r->src, row->buf + row->used);
	render_set(row, F_SRC, RK_SAFE, start);
	render_int(row, F_SPORT, r->sport);
	start = row->used;
	row->used += cache_addr_text(r->dst, row->buf + row->used);
	render_set(row, F_DST, RK_SAFE, start);
	render_int(row, F_DPORT, r->dport);
	if (r->proto == 6 && r->tcp_flags >= 0) {
		start = row->used;
		cache_tcp_flags(r->tcp_flags & 0xff, row->buf + row->used);
		row->used += 8;
		render_set(row, F_FLAGS, RK_SAFE, start);
	} else {
		render_null(row, F_FLAGS);
	}
	render_int(row, F_PKTS, r->pkts);
	render_int(row, F_BYTES, r->bytes);
	render_int(row, F_SRCAS, r->src_as);
	render_int(row, F_DSTAS, r->dst_as);
	e = r->exporter >= 0 && r->in_if >= 0
		    ? render_find(&ctx->map[CACHE_IFS], r->exporter, r->in_if, true) : NULL;
	render_name(row, F_INIF, e, r->in_if);
	e = r->exporter >= 0 && r->out_if >= 0
		    ? render_find(&ctx->map[CACHE_IFS], r->exporter, r->out_if, true) : NULL;
	render_name(row, F_OUTIF, e, r->out_if);
	e = r->exporter >= 0 ? render_find(&ctx->map[CACHE_EXPORTERS], r->exporter, 0, false)
			     : NULL;
	render_name(row, F_EXPORTER, e, r->exporter);
	e = r->app >= 0 ? render_find(&ctx->map[CACHE_APPS], r->app, 0, false) : NULL;
	render_name(row, F_APP, e, r->app);
	render_groups(ctx, row, F_SRCGROUPS, r->src_groups, r->nsrc_groups);
	render_groups(ctx, row, F_DSTGROUPS, r->dst_groups, r->ndst_groups);
	/* ICMP only: a type or code on another protocol is a driver's slip */
	bool icmp = r->proto == 1 || r->proto == 58 || r->proto < 0;
	render_int(row, F_ICMPTYPE, icmp ? r->icmp_type : -1);
	render_int(row, F_ICMPCODE, icmp ? r->icmp_code : -1);
	render_int(row, F_SAMPLING, r->sampling);
	render_ms(row, F_TS, r->start_ms);
	size_t cl = strnlen(r->community_id, sizeof(r->community_id));
	if (cl)
		render_text(row, F_COMMUNITY, r->community_id, cl);
	else
		render_null(row, F_COMMUNITY);
	render_text(row, F_FLOWID, r->id, strnlen(r->id, sizeof(r->id)));
}

/* ---- the output buffer -------------------------------------------------------------- */

int render_flush(struct render_out *o)
{
	if (o->err)
		return o->err;
	errno = 0;
	if (o->n && fwrite(o->buf, 1, o->n, o->f) != o->n)
		o->err = errno ? -errno : -EIO;
	o->n = 0;
	return o->err;
}

/* Flush the buffer, then the stream: 0, or the first write error as -errno
 * with "write: <cause>" in err; -EOVERFLOW (render_room refused an item
 * larger than the buffer) says so. */
int render_finish(struct render_out *o, char *err)
{
	int rc = render_flush(o);

	errno = 0;
	if (!rc && fflush(o->f) != 0)
		rc = errno ? -errno : -EIO;
	if (rc == -EOVERFLOW)
		return cache_fail(err, rc, "a field larger than the %d KiB output buffer",
				  RENDER_OUTBUF / 1024);
	return rc ? cache_fail(err, rc, "write: %s", strerror(-rc)) : 0;
}

/* ---- the entry point -------------------------------------------------------------------- */

/*
 * The text formats in two stages on two threads: this thread steps SQLite
 * and decodes rows into batches (about half of the work), a formatter
 * thread turns them into text and writes it, in order.  One read
 * transaction on one connection, so the output is still one snapshot and
 * the same bytes.  A ring of RENDER_BATCHES batches bounds the memory.
 */
#define RENDER_BATCH 2048
#define RENDER_BATCHES 3

struct render_pipe {
	pthread_mutex_t m;
	pthread_cond_t cv;
	struct flow_rec *recs[RENDER_BATCHES];
	size_t n[RENDER_BATCHES];
	uint64_t filled, consumed;	/* batches handed over / written */
	bool done;			/* no batch will follow */
	bool quit;			/* the formatter stopped on a write error */
	/* the formatter's */
	struct render_ctx *ctx;
	enum cache_format fmt;
	struct render_out o;
	struct render_row *row;
};

static void *render_formatter(void *arg)
{
	struct render_pipe *p = arg;

	pthread_mutex_lock(&p->m);
	for (;;) {
		while (p->consumed == p->filled && !p->done)
			pthread_cond_wait(&p->cv, &p->m);
		if (p->consumed == p->filled)
			break;
		size_t k = p->consumed % RENDER_BATCHES, n = p->n[k];
		const struct flow_rec *recs = p->recs[k];
		pthread_mutex_unlock(&p->m);
		for (size_t i = 0; i < n && !p->o.err; i++) {
			render_fields(p->ctx, &recs[i], p->row);
			if (p->fmt == CACHE_CSV)
				render_csv_row(&p->o, p->row);
			else
				render_ndjson_row(&p->o, p->row);
		}
		pthread_mutex_lock(&p->m);
		p->consumed++;
		if (p->o.err)
			p->quit = true;
		pthread_cond_broadcast(&p->cv);
		if (p->quit)
			break;
	}
	pthread_mutex_unlock(&p->m);
	return NULL;
}

/* Hand batch k (n rows) to the formatter and wait for a free one; false
 * when the formatter quit. */
static bool render_pipe_hand(struct render_pipe *p, size_t n)
{
	bool ok;

	pthread_mutex_lock(&p->m);
	p->n[p->filled % RENDER_BATCHES] = n;
	p->filled++;
	pthread_cond_broadcast(&p->cv);
	while (p->filled - p->consumed == RENDER_BATCHES && !p->quit)
		pthread_cond_wait(&p->cv, &p->m);
	ok = !p->quit;
	pthread_mutex_unlock(&p->m);
	return ok;
}

/* Stream q's rows through a text writer.  -errno on a read or write error. */
static int render_text_rows(struct cache *c, struct render_ctx *ctx,
			    const struct cache_query *q, enum cache_format fmt, FILE *out,
			    int64_t *rows, char *err)
{
	char subject[CACHE_KEY_LEN], peer[CACHE_KEY_LEN];
	sqlite3_stmt *st = c->st[q->has_peer ? ST_FLOWS_PEER : ST_FLOWS];
	struct render_pipe p = {.ctx = ctx, .fmt = fmt, .o = {.f = out}};
	pthread_t formatter;
	bool started = false, bound = false;
	int64_t n = 0;
	size_t k = 0;
	int rc = 0;

	pthread_mutex_init(&p.m, NULL);
	pthread_cond_init(&p.cv, NULL);
	p.o.buf = malloc(RENDER_OUTBUF);
	p.row = malloc(sizeof(*p.row));
	for (int i = 0; i < RENDER_BATCHES; i++)
		p.recs[i] = malloc(RENDER_BATCH * sizeof(struct flow_rec));
	if (!p.o.buf || !p.row || !p.recs[0] || !p.recs[1] || !p.recs[2]) {
		rc = cache_fail(err, -ENOMEM, "out of memory");
		goto out;
	}
	cache_query_keys(q, subject, peer);
	rc = cache_bind_query(st, q, subject);
	if (rc != SQLITE_OK) {
		rc = cache_sqlite_fail(c->db, rc, err, "bind query");
		goto out;
	}
	bound = true;
	if (fmt == CACHE_CSV)
		render_csv_header(&p.o);
	rc = pthread_create(&formatter, NULL, render_formatter, &p);
	if (rc) {
		rc = cache_fail(err, -rc, "cannot start the formatter thread: %s", strerror(rc));
		goto out;
	}
	started = true;
	for (;;) {
		struct flow_rec *batch = p.recs[p.filled % RENDER_BATCHES];
		while (k < RENDER_BATCH && (rc = sqlite3_step(st)) == SQLITE_ROW)
			cache_row_decode(st, &batch[k++]);
		if (k == RENDER_BATCH || (rc == SQLITE_DONE && k)) {
			n += (int64_t)k;
			bool ok = render_pipe_hand(&p, k);
			k = 0;
			if (!ok)
				break;
			if (rc == SQLITE_ROW)
				continue;
		}
		break;
	}
	pthread_mutex_lock(&p.m);
	p.done = true;
	pthread_cond_broadcast(&p.cv);
	pthread_mutex_unlock(&p.m);
	pthread_join(formatter, NULL);
	started = false;
	if (!p.quit && rc != SQLITE_ROW && rc != SQLITE_DONE) {
		rc = cache_sqlite_fail(c->db, rc, err, "read flows");
		goto out;
	}
	rc = render_finish(&p.o, err);
	if (rc)
		goto out;
	if (rows)
		*rows = n;
out:
	if (started) {
		pthread_mutex_lock(&p.m);
		p.done = true;
		pthread_cond_broadcast(&p.cv);
		pthread_mutex_unlock(&p.m);
		pthread_join(formatter, NULL);
	}
	if (bound)
		sqlite3_reset(st);
	for (int i = 0; i < RENDER_BATCHES; i++)
		free(p.recs[i]);
	free(p.row);
	free(p.o.buf);
	pthread_cond_destroy(&p.cv);
	pthread_mutex_destroy(&p.m);
	return rc;
}

/*
 * tzset and a fresh zone cache (TZ may have changed since the last render),
 * BEGIN on c's connection (every statement until render_end sees one
 * snapshot), then the lookup tables.  On error nothing is left open.
 */
int render_begin(struct cache *c, struct render_ctx **out, char *err)
{
	struct render_ctx *ctx;
	int rc;

	*out = NULL;
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return cache_fail(err, -ENOMEM, "out of memory");
	tzset();
	cache_tz_reset(&ctx->tz);
	rc = sqlite3_step(c->st[ST_BEGIN_READ]);
	sqlite3_reset(c->st[ST_BEGIN_READ]);
	if (rc != SQLITE_DONE) {
		rc = cache_sqlite_fail(c->db, rc, err, "begin read");
		free(ctx);
		return rc;
	}
	rc = render_maps_load(c, ctx, err);
	if (rc) {
		render_end(c, ctx);
		return rc;
	}
	*out = ctx;
	return 0;
}

/* A read transaction: COMMIT only ends it (ROLLBACK should that fail). */
void render_end(struct cache *c, struct render_ctx *ctx)
{
	sqlite3_step(c->st[ST_COMMIT]);
	sqlite3_reset(c->st[ST_COMMIT]);
	if (!sqlite3_get_autocommit(c->db)) {
		sqlite3_step(c->st[ST_ROLLBACK]);
		sqlite3_reset(c->st[ST_ROLLBACK]);
	}
	if (ctx) {
		render_maps_free(ctx);
		free(ctx);
	}
}

/*
 * Render q in one read transaction (render_begin ... render_end).
 * -EINVAL for a bad format or a missing 'out'/'path'; -EEXIST when the
 * SQLite file exists; SQLite errors and write errors as -errno.
 */
int cache_render(struct cache *c, const struct cache_query *q,
		 enum cache_format fmt, FILE *out, const char *path,
		 const struct cache_meta *meta, size_t nmeta, int64_t *rows,
		 char *err)
{
	struct render_ctx *ctx;
	int rc;

	if (rows)
		*rows = 0;
	if (!c || !q || q->start > q->end)
		return cache_fail(err, -EINVAL, "bad query");
	if ((fmt == CACHE_CSV || fmt == CACHE_NDJSON) && !out)
		return cache_fail(err, -EINVAL, "no output stream");
	if (fmt == CACHE_SQLITE && (!path || !*path))
		return cache_fail(err, -EINVAL, "no output path");
	if (fmt != CACHE_CSV && fmt != CACHE_NDJSON && fmt != CACHE_SQLITE)
		return cache_fail(err, -EINVAL, "unknown format %d", (int)fmt);
	if (nmeta && !meta)
		return cache_fail(err, -EINVAL, "no meta");
	rc = render_begin(c, &ctx, err);
	if (rc)
		return rc;
	if (fmt == CACHE_SQLITE)
		rc = render_sqlite(c, ctx, q, path, meta, nmeta, rows, err);
	else
		rc = render_text_rows(c, ctx, q, fmt, out, rows, err);
	render_end(c, ctx);
	return rc;
}
