/*
 * render_sqlite.c - flows.sqlite: a standalone database of a query's flows,
 * for users who would rather write SQL than awk.
 *
 * Tables: 'flows' with flows.csv's columns under the same names (typed:
 * numbers INTEGER, duration and ts REAL, the rest TEXT) followed by the raw
 * values a name or a text stands for (start_ms, end_ms, proto_num,
 * tcp_flags_num, exporter_id, app_id, in_if_num, out_if_num,
 * src_groups_ids, dst_groups_ids) and 'extra' (the JSON object of what the
 * collector says that has no column, NULL when nothing: flow_rec.extra);
 * 'query' (key, value) with the caller's provenance; 'coverage' and 'gaps'
 * with the windows behind the flows.
 *
 * The file is written through a second connection, in rollback-journal mode
 * (a WAL database on a read-only path cannot be opened normally), in one
 * transaction, rows streamed from the cache's SELECT one at a time.  It is
 * deterministic: the page size is set, the rows go in in key order, nothing
 * time-dependent is written, so the same cache state gives a byte-identical
 * file (test_render checks it) and SHA256SUMS stays true across renders.
 * On any error the half-written file is removed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "render_i.h"

#define SQLITE_OUT_RAW 11	/* the columns after flows.csv's */

static const char sqlite_out_schema[] =
	"PRAGMA page_size=4096;"
	"PRAGMA journal_mode=DELETE;"
	"PRAGMA user_version=2;"	/* 2: the column extra */
	"BEGIN;"
	"CREATE TABLE flows("
	" firstSeen TEXT, lastSeen TEXT, duration REAL, proto TEXT,"
	" srcAddr TEXT, srcPort INTEGER, dstAddr TEXT, dstPort INTEGER,"
	" flags TEXT, packets INTEGER, bytes INTEGER, srcAS INTEGER, dstAS INTEGER,"
	" inIf TEXT, outIf TEXT, exporter TEXT, app TEXT,"
	" srcGroups TEXT, dstGroups TEXT, icmpType INTEGER, icmpCode INTEGER,"
	" sampling INTEGER, ts REAL, communityId TEXT, flowId TEXT,"
	" start_ms INTEGER, end_ms INTEGER, proto_num INTEGER, tcp_flags_num INTEGER,"
	" exporter_id INTEGER, app_id INTEGER, in_if_num INTEGER, out_if_num INTEGER,"
	" src_groups_ids TEXT, dst_groups_ids TEXT, extra TEXT);"
	"CREATE TABLE query(key TEXT, value TEXT);"
	"CREATE TABLE coverage(start_ms INTEGER, end_ms INTEGER, fetched_ms INTEGER,"
	" provisional INTEGER, records INTEGER);"
	"CREATE TABLE gaps(start_ms INTEGER, end_ms INTEGER, peer TEXT, seen INTEGER,"
	" reason TEXT);";

static void sqlite_out_opt(sqlite3_stmt *st, int i, int64_t v)
{
	if (v < 0)
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_int64(st, i, v);
}

/* "3;12" from ids, NULL for none. */
static void sqlite_out_ids(sqlite3_stmt *st, int i, const uint32_t *g, uint8_t n)
{
	char buf[CACHE_GROUPS_MAX * 11];
	size_t len = 0;

	if (n == 0) {
		sqlite3_bind_null(st, i);
		return;
	}
	for (int k = 0; k < n && k < CACHE_GROUPS_MAX; k++) {
		if (k)
			buf[len++] = ';';
		len += cache_i64_text(g[k], buf + len);
	}
	sqlite3_bind_text(st, i, buf, (int)len, SQLITE_TRANSIENT);
}

/* Bind one flow: the 25 fields, then the raw values and extra. */
static void sqlite_out_bind(sqlite3_stmt *st, const struct render_row *row,
			    const struct flow_rec *r)
{
	for (int i = 0; i < RENDER_NCOLS; i++) {
		const struct render_field *f = &row->f[i];
		switch (f->kind) {
		case RK_NULL:
			sqlite3_bind_null(st, i + 1);
			break;
		case RK_INT:
			sqlite3_bind_int64(st, i + 1, f->num);
			break;
		case RK_MS:
			sqlite3_bind_double(st, i + 1, (double)f->num / 1000.0);
			break;
		default:
			sqlite3_bind_text(st, i + 1, f->s, (int)f->len, SQLITE_STATIC);
			break;
		}
	}
	int k = RENDER_NCOLS + 1;
	sqlite3_bind_int64(st, k++, r->start_ms);
	sqlite_out_opt(st, k++, r->end_ms);
	sqlite_out_opt(st, k++, r->proto);
	sqlite_out_opt(st, k++, r->tcp_flags);
	sqlite_out_opt(st, k++, r->exporter);
	sqlite_out_opt(st, k++, r->app);
	sqlite_out_opt(st, k++, r->in_if);
	sqlite_out_opt(st, k++, r->out_if);
	sqlite_out_ids(st, k++, r->src_groups, r->nsrc_groups);
	sqlite_out_ids(st, k++, r->dst_groups, r->ndst_groups);
	size_t xl = strnlen(r->extra, sizeof(r->extra) - 1);
	if (xl)
		sqlite3_bind_text(st, k++, r->extra, (int)xl, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, k++);
}

/* Step an INSERT, reset it; -errno with a message on failure. */
static int sqlite_out_step(sqlite3 *db, sqlite3_stmt *st, char *err, const char *what)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : cache_sqlite_fail(db, rc, err, what);
}

static int sqlite_out_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st, char *err)
{
	int rc = sqlite3_prepare_v2(db, sql, -1, st, NULL);

	return rc == SQLITE_OK ? 0 : cache_sqlite_fail(db, rc, err, "prepare export");
}

/* The flows, streamed: one cache row read, one export row written. */
static int sqlite_out_flows(struct cache *c, struct render_ctx *ctx,
			    const struct cache_query *q, sqlite3 *db, int64_t *rows,
			    char *err)
{
	char subject[CACHE_KEY_LEN], peer[CACHE_KEY_LEN], sql[512];
	sqlite3_stmt *src = c->st[q->has_peer ? ST_FLOWS_PEER : ST_FLOWS];
	sqlite3_stmt *ins = NULL;
	struct render_row *row;
	struct flow_rec rec;
	size_t len;
	int64_t n = 0;
	int rc;

	row = malloc(sizeof(*row));
	if (!row)
		return cache_fail(err, -ENOMEM, "out of memory");
	len = (size_t)snprintf(sql, sizeof(sql), "INSERT INTO flows VALUES (?");
	for (int i = 1; i < RENDER_NCOLS + SQLITE_OUT_RAW; i++)
		len += (size_t)snprintf(sql + len, sizeof(sql) - len, ",?");
	snprintf(sql + len, sizeof(sql) - len, ")");
	rc = sqlite_out_prepare(db, sql, &ins, err);
	if (rc)
		goto out;
	cache_query_keys(q, subject, peer);
	rc = cache_bind_query(src, q, subject);
	if (rc != SQLITE_OK) {
		rc = cache_sqlite_fail(c->db, rc, err, "bind query");
		goto out;
	}
	while ((rc = sqlite3_step(src)) == SQLITE_ROW) {
		cache_row_decode(src, &rec);
		render_fields(ctx, &rec, row);
		sqlite_out_bind(ins, row, &rec);
		rc = sqlite_out_step(db, ins, err, "write flow");
		if (rc)
			goto out;
		n++;
	}
	if (rc != SQLITE_DONE) {
		rc = cache_sqlite_fail(c->db, rc, err, "read flows");
		goto out;
	}
	rc = 0;
	*rows = n;
out:
	sqlite3_reset(src);
	sqlite3_finalize(ins);
	free(row);
	return rc;
}

/* query, coverage and gaps. */
static int sqlite_out_provenance(struct cache *c, const struct cache_query *q,
				 sqlite3 *db, const struct cache_meta *meta, size_t nmeta,
				 char *err)
{
	struct cache_cover *cov = NULL;
	struct cache_gap *gaps = NULL;
	size_t ncov = 0, ngaps = 0;
	sqlite3_stmt *st = NULL;
	int rc;

	rc = sqlite_out_prepare(db, "INSERT INTO query VALUES (?1,?2)", &st, err);
	for (size_t i = 0; !rc && i < nmeta; i++) {
		sqlite3_bind_text(st, 1, meta[i].key, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, meta[i].value, -1, SQLITE_STATIC);
		rc = sqlite_out_step(db, st, err, "write query");
	}
	sqlite3_finalize(st);
	st = NULL;
	if (rc)
		goto out;
	rc = cache_coverage_all(c, q, &cov, &ncov, err);
	if (!rc)
		rc = sqlite_out_prepare(db, "INSERT INTO coverage VALUES (?1,?2,?3,?4,?5)", &st,
					err);
	for (size_t i = 0; !rc && i < ncov; i++) {
		sqlite3_bind_int64(st, 1, cov[i].start);
		sqlite3_bind_int64(st, 2, cov[i].end);
		sqlite3_bind_int64(st, 3, cov[i].fetched_ms);
		sqlite3_bind_int(st, 4, cov[i].provisional ? 1 : 0);
		sqlite3_bind_int64(st, 5, cov[i].records);
		rc = sqlite_out_step(db, st, err, "write coverage");
	}
	sqlite3_finalize(st);
	st = NULL;
	if (rc)
		goto out;
	rc = cache_gaps(c, q, &gaps, &ngaps, err);
	if (!rc)
		rc = sqlite_out_prepare(db, "INSERT INTO gaps VALUES (?1,?2,?3,?4,?5)", &st, err);
	for (size_t i = 0; !rc && i < ngaps; i++) {
		sqlite3_bind_int64(st, 1, gaps[i].start);
		sqlite3_bind_int64(st, 2, gaps[i].end);
		sqlite3_bind_text(st, 3, gaps[i].peer, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 4, gaps[i].seen);
		sqlite3_bind_text(st, 5, gaps[i].reason, -1, SQLITE_STATIC);
		rc = sqlite_out_step(db, st, err, "write gaps");
	}
	sqlite3_finalize(st);
out:
	free(cov);
	free(gaps);
	return rc;
}

/*
 * Create path (O_EXCL: -EEXIST when it exists, and the file is never one
 * somebody else made), fill it in one transaction, close it.  On error the
 * file and its journal are removed.
 */
int render_sqlite(struct cache *c, struct render_ctx *ctx, const struct cache_query *q,
		  const char *path, const struct cache_meta *meta, size_t nmeta,
		  int64_t *rows, char *err)
{
	sqlite3 *db = NULL;
	int64_t n = 0;
	int fd, rc;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
	if (fd < 0)
		return cache_fail(err, -errno, "%s: %s", path, strerror(errno));
	close(fd);
	rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		rc = cache_sqlite_fail(db, rc, err, path);
		goto fail;
	}
	sqlite3_extended_result_codes(db, 1);
	rc = sqlite3_exec(db, sqlite_out_schema, NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		rc = cache_sqlite_fail(db, rc, err, "create export");
		goto fail;
	}
	rc = sqlite_out_flows(c, ctx, q, db, &n, err);
	if (!rc)
		rc = sqlite_out_provenance(c, q, db, meta, nmeta, err);
	if (rc)
		goto fail;
	rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		rc = cache_sqlite_fail(db, rc, err, "commit export");
		goto fail;
	}
	rc = sqlite3_close(db);
	db = NULL;
	if (rc != SQLITE_OK) {
		rc = cache_fail(err, cache_sqlite_errno(rc), "close %s: %s", path,
				sqlite3_errstr(rc));
		goto fail;
	}
	if (rows)
		*rows = n;
	return 0;
fail:
	sqlite3_close_v2(db);
	unlink(path);
	{
		size_t len = strlen(path) + sizeof("-journal");
		char *j = malloc(len);
		if (j) {
			snprintf(j, len, "%s-journal", path);
			unlink(j);
			free(j);
		}
	}
	return rc;
}
