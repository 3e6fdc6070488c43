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
 * The file is written by a connection of its own, with the cache attached
 * read-only as 'c', and its flows table filled by one INSERT ... SELECT in
 * the cache's key order (no sort): SQLite copies the rows itself, and the
 * names and texts of flows.csv come from SQL functions registered on that
 * connection (flowfs_time, flowfs_addr, ...: the spellings of format.c and
 * prefix.c, names through the render's maps and its zone cache), the
 * decisions of render_fields written as CASE expressions.  test_render
 * compares the file, row by row and column by column, with one written row
 * by row from render_fields on random flows.  Row at a time (a prepared
 * INSERT stepped once a flow, 36 binds) it was 200,000-240,000 rows/s.
 *
 * While the file is built: no journal, no sync (it is unlinked until whole,
 * in a snapshot directory, and removed on any error), pages of 16 KiB, a
 * 2 MiB page cache.  Measured on the heavy day of bench/run fs (2,031,218
 * flows, bench_render FILE.sqlite, CPU seconds, a 2-vCPU VM at load 7-8):
 * 4 KiB pages 5.2-5.8 s, 16 KiB 4.9-5.1 s, 64 KiB 4.8-6.1 s; a 64 MiB page
 * cache or mmap of the cache bought nothing measurable; the same statement
 * with the raw columns and no function took 3.1 s, so the functions and
 * CASEs cost about 2 s of it.  journal_mode=OFF is not kept in the file:
 * readers find a rollback-journal database (a WAL database on a read-only
 * path cannot be opened normally).
 *
 * It is deterministic: the page size is set, the rows go in in key order,
 * nothing time-dependent is written, so the same cache state gives a
 * byte-identical file (test_render checks it) and SHA256SUMS stays true
 * across renders.  The rows come from the attached connection's snapshot of
 * the cache, which it takes when the INSERT starts, a moment after
 * render_begin's (the maps, coverage and gaps): a window stored in between
 * shows in the rows and not in the coverage, as between two files of a
 * folder rendered at different times.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "render_i.h"

/* How long the export waits on the cache (WAL: only while a connection
 * recovers or checkpoints it; readers never wait for writers). */
#define SQLITE_OUT_BUSY_MS 60000

/* Before anything is written: the page size and the page cache (see
 * above), no journal and no sync (the file is unlinked until it is whole,
 * and removed on error; a journal mode other than WAL is not kept in the
 * file, so readers find a rollback-journal database). */
static const char sqlite_out_pragmas[] =
	"PRAGMA page_size=16384;"
	"PRAGMA cache_size=-2000;"
	"PRAGMA journal_mode=OFF;"
	"PRAGMA synchronous=OFF;";

static const char sqlite_out_schema[] =
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

/* Step a statement, reset it; -errno with a message on failure. */
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

/* ---- the SQL functions that spell a cache row's values -------------------- */

/* The value of an optional number: NULL (unknown) reads as -1, as
 * cache_col_opt reads it. */
static int64_t sqlite_fn_opt(sqlite3_value *v)
{
	return sqlite3_value_type(v) == SQLITE_NULL ? -1 : sqlite3_value_int64(v);
}

/* The bytes of a text argument and their length, not NUL-terminated; ""
 * for NULL.  Text is read as a blob: sqlite3_value_text would copy every
 * value that lies unterminated in a page, to add the NUL. */
static const char *sqlite_fn_text(sqlite3_value *v, size_t *len)
{
	int type = sqlite3_value_type(v);
	const void *t = type == SQLITE_TEXT || type == SQLITE_BLOB ? sqlite3_value_blob(v)
								  : sqlite3_value_text(v);
	int n = sqlite3_value_bytes(v);

	*len = t && n > 0 ? (size_t)n : 0;
	return t ? (const char *)t : "";
}

/* flowfs_time(ms): firstSeen and lastSeen in the process's zone (the user
 * data: the render's zone cache). */
static void sqlite_fn_time(sqlite3_context *cx, int argc, sqlite3_value **argv)
{
	char buf[40];
	size_t n;

	(void)argc;
	n = cache_time_text(sqlite3_user_data(cx), sqlite3_value_int64(argv[0]), buf);
	sqlite3_result_text(cx, buf, (int)n, SQLITE_TRANSIENT);
}

/* flowfs_addr(blob): an address of the store (16 bytes, IPv4 mapped; any
 * other value reads as zeros, as cache_row_decode reads it). */
static void sqlite_fn_addr(sqlite3_context *cx, int argc, sqlite3_value **argv)
{
	static const uint8_t zero[16];
	const uint8_t *a = sqlite3_value_blob(argv[0]);
	char buf[48];
	size_t n;

	(void)argc;
	if (!a || sqlite3_value_bytes(argv[0]) != 16)
		a = zero;
	n = cache_addr_text(a, buf);
	sqlite3_result_text(cx, buf, (int)n, SQLITE_TRANSIENT);
}

/* flowfs_proto(proto >= 0): its name, else the number as text. */
static void sqlite_fn_proto(sqlite3_context *cx, int argc, sqlite3_value **argv)
{
	int32_t p = (int32_t)sqlite3_value_int64(argv[0]);
	const char *name = cache_proto_name(p);
	char buf[24];

	(void)argc;
	if (name)
		sqlite3_result_text(cx, name, -1, SQLITE_STATIC);
	else
		sqlite3_result_text(cx, buf, (int)cache_i64_text(p, buf), SQLITE_TRANSIENT);
}

/* flowfs_flags(tcp_flags >= 0): "CEUAPRSF" with '.' for a clear bit. */
static void sqlite_fn_flags(sqlite3_context *cx, int argc, sqlite3_value **argv)
{
	char buf[9];

	(void)argc;
	cache_tcp_flags((int32_t)sqlite3_value_int64(argv[0]) & 0xff, buf);
	sqlite3_result_text(cx, buf, 8, SQLITE_TRANSIENT);
}

/* A name of map e, else the number v as text. */
static void sqlite_fn_named(sqlite3_context *cx, const struct render_map_entry *e, int64_t v)
{
	char buf[24];

	if (e)
		sqlite3_result_text(cx, e->name, (int)e->len, SQLITE_STATIC);
	else
		sqlite3_result_text(cx, buf, (int)cache_i64_text(v, buf), SQLITE_TRANSIENT);
}

/* flowfs_exporter(key >= 0), flowfs_app(key >= 0): a name of the map
 * that is the user data, else the number. */
static void sqlite_fn_name(sqlite3_context *cx, int argc, sqlite3_value **argv)
{
	int64_t key = sqlite3_value_int64(argv[0]);

	(void)argc;
	sqlite_fn_named(cx, render_find(sqlite3_user_data(cx), key, 0, false), key);
}

/* flowfs_ifname(exporter, if >= 0): the interface's name on its exporter
 * (the user data: the map of interfaces). */
static void sqlite_fn_ifname(sqlite3_context *cx, int argc, sqlite3_value **argv)
{
	int64_t exporter = sqlite_fn_opt(argv[0]), ifnum = sqlite3_value_int64(argv[1]);

	(void)argc;
	sqlite_fn_named(cx, exporter >= 0 ? render_find(sqlite3_user_data(cx), exporter, ifnum,
							true)
					  : NULL, ifnum);
}

/* flowfs_groups(text) and flowfs_ids(text): the groups of a side by name
 * (the user data: the map of groups), or their ids "3;12" (user data
 * NULL); NULL for none. */
static void sqlite_fn_groups(sqlite3_context *cx, int argc, sqlite3_value **argv)
{
	char buf[CACHE_GROUPS_MAX * (CACHE_NAME_MAX + 2) + 64];
	uint32_t g[CACHE_GROUPS_MAX];
	uint8_t n;

	size_t tl;
	const char *t = sqlite_fn_text(argv[0], &tl);

	(void)argc;
	if (tl < sizeof(buf)) {		/* the text with its NUL, in buf for now */
		memcpy(buf, t, tl);
		buf[tl] = '\0';
		n = cache_groups_parse((const unsigned char *)buf, g);
	} else {
		n = cache_groups_parse(sqlite3_value_text(argv[0]), g);
	}
	if (n == 0)
		return;
	size_t len = render_groups_text(sqlite3_user_data(cx), g, n, buf, sizeof(buf));
	sqlite3_result_text(cx, buf, (int)len, SQLITE_TRANSIENT);
}

/* flowfs_whole(text, size): text of at most size - 1 bytes up to its first
 * NUL, NULL when empty or longer (dropped, not cut: a Community ID, extra). */
static void sqlite_fn_whole(sqlite3_context *cx, int argc, sqlite3_value **argv)
{
	size_t len, size = (size_t)sqlite3_value_int64(argv[1]);
	const char *t = sqlite_fn_text(argv[0], &len);

	(void)argc;
	if (len >= size)
		return;
	len = strnlen(t, len);
	if (len)
		sqlite3_result_text(cx, t, (int)len, SQLITE_TRANSIENT);
}

/* flowfs_id(text): a flow's id, cut to CACHE_ID_MAX bytes and its first
 * NUL, as cache_row_decode reads it. */
static void sqlite_fn_id(sqlite3_context *cx, int argc, sqlite3_value **argv)
{
	size_t len;
	const char *t = sqlite_fn_text(argv[0], &len);

	(void)argc;
	if (len > CACHE_ID_MAX)
		len = CACHE_ID_MAX;
	len = strnlen(t, len);
	sqlite3_result_text(cx, t, (int)len, SQLITE_TRANSIENT);
}

/* What a function gets as its user data. */
enum { SQ_NONE = -2, SQ_TZ = -1 };	/* else a map: CACHE_APPS, ... */

static const struct {
	const char *name;
	int argc;
	int data;	/* SQ_NONE, SQ_TZ or the enum cache_table of a map */
	void (*fn)(sqlite3_context *, int, sqlite3_value **);
} sqlite_fns[] = {
	{"flowfs_time", 1, SQ_TZ, sqlite_fn_time},
	{"flowfs_addr", 1, SQ_NONE, sqlite_fn_addr},
	{"flowfs_proto", 1, SQ_NONE, sqlite_fn_proto},
	{"flowfs_flags", 1, SQ_NONE, sqlite_fn_flags},
	{"flowfs_exporter", 1, CACHE_EXPORTERS, sqlite_fn_name},
	{"flowfs_app", 1, CACHE_APPS, sqlite_fn_name},
	{"flowfs_ifname", 2, CACHE_IFS, sqlite_fn_ifname},
	{"flowfs_groups", 1, CACHE_GROUPS, sqlite_fn_groups},
	{"flowfs_ids", 1, SQ_NONE, sqlite_fn_groups},
	{"flowfs_whole", 2, SQ_NONE, sqlite_fn_whole},
	{"flowfs_id", 1, SQ_NONE, sqlite_fn_id},
};

/* Register sqlite_fns on db, with ctx's zone cache and maps (deterministic:
 * the same arguments give the same text within one render; direct only: no
 * schema can call them).  -errno with the cause in err. */
static int sqlite_out_functions(sqlite3 *db, struct render_ctx *ctx, char *err)
{
	for (size_t i = 0; i < sizeof(sqlite_fns) / sizeof(sqlite_fns[0]); i++) {
		int d = sqlite_fns[i].data;
		void *data = d == SQ_TZ ? (void *)&ctx->tz : d >= 0 ? (void *)&ctx->map[d] : NULL;
		int rc = sqlite3_create_function_v2(
			db, sqlite_fns[i].name, sqlite_fns[i].argc,
			SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_DIRECTONLY, data,
			sqlite_fns[i].fn, NULL, NULL, NULL);
		if (rc != SQLITE_OK)
			return cache_sqlite_fail(db, rc, err, "register export functions");
	}
	return 0;
}

/* An optional number: NULL unless >= 0 ('x' an SQL expression). */
#define SQ_OPT(x) "CASE WHEN " x ">=0 THEN " x " END"
#define SQ_STR(x) #x
#define SQ_NUM(x) SQ_STR(x)

/*
 * flows.csv's 25 columns, then the raw values, from a row of the cache's
 * flows table: render_fields' decisions in SQL, the spelling of times,
 * addresses, names and flags by the functions above.  Every CASE mirrors a
 * branch of render_fields; test_render compares the file with one written
 * row by row through render_fields on random flows.
 */
#define SQ_ICMP_OK "(proto IS NULL OR proto<0 OR proto=1 OR proto=58)"
static const char sqlite_out_select[] =
	"INSERT INTO flows SELECT"
	" flowfs_time(start),"
	" CASE WHEN \"end\">=0 THEN flowfs_time(\"end\") END,"
	" CASE WHEN \"end\">=0 THEN (\"end\"-start)/1000.0 END,"
	" CASE WHEN proto>=0 THEN flowfs_proto(proto) END,"
	" flowfs_addr(src), " SQ_OPT("sport") ", flowfs_addr(dst), " SQ_OPT("dport") ","
	" CASE WHEN proto=6 AND tcp_flags>=0 THEN flowfs_flags(tcp_flags) END,"
	" " SQ_OPT("pkts") ", " SQ_OPT("bytes") ", " SQ_OPT("src_as") ", " SQ_OPT("dst_as") ","
	" CASE WHEN in_if>=0 THEN flowfs_ifname(exporter,in_if) END,"
	" CASE WHEN out_if>=0 THEN flowfs_ifname(exporter,out_if) END,"
	" CASE WHEN exporter>=0 THEN flowfs_exporter(exporter) END,"
	" CASE WHEN app>=0 THEN flowfs_app(app) END,"
	" CASE WHEN src_groups IS NOT NULL THEN flowfs_groups(src_groups) END,"
	" CASE WHEN dst_groups IS NOT NULL THEN flowfs_groups(dst_groups) END,"
	" CASE WHEN icmp_type>=0 AND " SQ_ICMP_OK " THEN icmp_type END,"
	" CASE WHEN icmp_code>=0 AND " SQ_ICMP_OK " THEN icmp_code END,"
	" " SQ_OPT("sampling") ","
	" start/1000.0,"
	" CASE WHEN community_id IS NOT NULL THEN flowfs_whole(community_id,"
	SQ_NUM(CACHE_CID_LEN) ") END,"
	" flowfs_id(id),"
	" start, " SQ_OPT("\"end\"") ", " SQ_OPT("proto") ", " SQ_OPT("tcp_flags") ","
	" " SQ_OPT("exporter") ", " SQ_OPT("app") ", " SQ_OPT("in_if") ", " SQ_OPT("out_if") ","
	" CASE WHEN src_groups IS NOT NULL THEN flowfs_ids(src_groups) END,"
	" CASE WHEN dst_groups IS NOT NULL THEN flowfs_ids(dst_groups) END,"
	" CASE WHEN extra IS NOT NULL THEN flowfs_whole(extra," SQ_NUM(CACHE_EXTRA_LEN) ") END"
	" FROM c.flows WHERE subject=?1 AND start>=?2 AND start<?3";

/* The flows, in one statement: the cache's rows of q in key order into
 * 'flows'. */
static int sqlite_out_flows(const struct cache_query *q, sqlite3 *db, int64_t *rows,
			    char *err)
{
	char subject[CACHE_KEY_LEN], peer[CACHE_KEY_LEN];
	char sql[sizeof(sqlite_out_select) + sizeof(CACHE_PEER_WHERE) + 32];
	sqlite3_stmt *ins = NULL;
	int rc;

	snprintf(sql, sizeof(sql), "%s%s ORDER BY start,id", sqlite_out_select,
		 q->has_peer ? CACHE_PEER_WHERE : "");
	rc = sqlite_out_prepare(db, sql, &ins, err);
	if (rc)
		return rc;
	cache_query_keys(q, subject, peer);
	rc = cache_bind_query(ins, q, subject);
	if (rc != SQLITE_OK) {
		rc = cache_sqlite_fail(db, rc, err, "bind query");
		goto out;
	}
	rc = sqlite3_step(ins);
	if (rc != SQLITE_DONE) {
		rc = cache_sqlite_fail(db, rc, err, "write flows");
		goto out;
	}
	*rows = sqlite3_changes64(db);
	rc = 0;
out:
	sqlite3_finalize(ins);
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

/* sqlite3_progress_handler's callback: non-zero (the cache's cancel flag
 * is set) interrupts the statement. */
static int sqlite_out_cancelled(void *arg)
{
	const atomic_int *cancel = arg;

	return atomic_load(cancel) != 0;
}

/* "file:" and path with every byte but [A-Za-z0-9/._~-] percent-encoded,
 * then query ("?mode=ro" or ""): a URI that names exactly path, whatever
 * it holds ('?', '#', '%').  malloc'd; NULL when out of memory. */
static char *sqlite_out_uri(const char *path, const char *query)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t len = strlen(path), o = 0;
	char *u = malloc(sizeof("file:") + 3 * len + strlen(query));

	if (!u)
		return NULL;
	o += (size_t)sprintf(u, "file:");
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)path[i];
		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		    strchr("/._~-", ch)) {
			u[o++] = (char)ch;
		} else {
			u[o++] = '%';
			u[o++] = hex[ch >> 4];
			u[o++] = hex[ch & 15];
		}
	}
	strcpy(u + o, query);
	return u;
}

/* Open path (made empty by the caller) on a new connection with the cache
 * attached read-only as 'c', the functions registered and the schema
 * created, in a transaction.  -errno with the cause in err; *db is then
 * still to be closed. */
static int sqlite_out_open(struct cache *c, struct render_ctx *ctx, const char *path,
			   sqlite3 **db, char *err)
{
	char *uri = sqlite_out_uri(path, ""), *cache_uri = sqlite_out_uri(c->path, "?mode=ro");
	sqlite3_stmt *st = NULL;
	int rc;

	if (!uri || !cache_uri) {
		rc = cache_fail(err, -ENOMEM, "out of memory");
		goto out;
	}
	rc = sqlite3_open_v2(uri, db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI,
			     NULL);
	if (rc != SQLITE_OK) {
		rc = cache_sqlite_fail(*db, rc, err, path);
		goto out;
	}
	sqlite3_extended_result_codes(*db, 1);
	sqlite3_busy_timeout(*db, SQLITE_OUT_BUSY_MS);
	if (c->cancel)
		sqlite3_progress_handler(*db, CACHE_CANCEL_STEPS, sqlite_out_cancelled,
					 (void *)c->cancel);
	rc = sqlite_out_functions(*db, ctx, err);
	if (rc)
		goto out;
	rc = sqlite3_exec(*db, sqlite_out_pragmas, NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		rc = cache_sqlite_fail(*db, rc, err, "set up export");
		goto out;
	}
	rc = sqlite_out_prepare(*db, "ATTACH ?1 AS c", &st, err);
	if (rc)
		goto out;
	sqlite3_bind_text(st, 1, cache_uri, -1, SQLITE_STATIC);
	rc = sqlite_out_step(*db, st, err, "attach the cache");
	if (rc)
		goto out;
	rc = sqlite3_exec(*db, sqlite_out_schema, NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		rc = cache_sqlite_fail(*db, rc, err, "create export");
out:
	sqlite3_finalize(st);
	free(uri);
	free(cache_uri);
	return rc;
}

/*
 * Create path (O_EXCL: -EEXIST when it exists, and the file is never one
 * somebody else made), fill it in one transaction, close it.  On error the
 * file (and a journal, were there one) is removed.
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
	rc = sqlite_out_open(c, ctx, path, &db, err);
	if (!rc)
		rc = sqlite_out_flows(q, db, &n, err);
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
