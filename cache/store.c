/*
 * store.c - the SQLite store of one collector: opening (directory, file
 * modes, schema and its migrations, the collector's identity), flows,
 * coverage, gaps, lookup tables and counts.
 *
 * Why it is built this way (docs/design.md, "The cache"): a naive flows table (random
 * TEXT key + indexes) inserts about 21,600 rows/s, four times slower than
 * decoding; rows that arrive in key order insert at 180,000 rows/s or more.
 * So flows live in a WITHOUT ROWID table clustered on (subject, start, id),
 * each window is sorted before it is inserted, there is no secondary index,
 * and a renderer that reads one subject's range walks the key in order with
 * no sort.  Addresses are 16-byte BLOBs (IPv4 mapped), so a peer prefix is a
 * BLOB range and needs no function call per row.
 *
 * Measured (a local C program driving this file; debugoptimized build, 2
 * vCPU Debian 12 VM shared with other work, SQLite 3.40.1, WAL,
 * synchronous=NORMAL, 24 columns, 1,000,000 rows of one subject into a fresh
 * file, timing only cache_put_window): sorted 10,000-row windows
 * 275,000-290,000 rows/s; the same windows shuffled before the call, so
 * that the sort in here does its work (about 2 ms a window), 215,000-230,000
 * rows/s.  The random-key schema of docs/design.md's "Measured facts" did
 * 21,600 rows/s.
 *
 * Issue 18 (bench/bench_store, docs/design.md's table): new caches take
 * 16 KiB pages, and a window's records go in STORE_BATCH to a statement:
 * one statement a record opened a cursor, descended from the root and
 * freed it all again for every row.  Together: 355,000-370,000 -> 500,000-
 * 536,000 rows per CPU second of the store thread; callgrind counts 20.6%
 * fewer instructions in cache_put_window for the batches alone.
 *
 * Durability: WAL with busy_timeout STORE_BUSY_MS; every write is one BEGIN
 * IMMEDIATE transaction, so a window's records and its coverage row land
 * together or not at all, and a writer never deadlocks upgrading a read
 * lock.
 *
 * Schema evolution: meta.schema_version names the schema a file holds;
 * store_migrations[v] turns version v into v + 1 (version 0 is a file with
 * no schema yet, so creating a cache is the first migration), all inside the
 * opening transaction.  A file newer than this program is refused, never
 * touched.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "arr.h"
#include "cache_i.h"

/* How long a writer waits for the others (other mounts and flowfetch runs
 * on the same cache, other folders' store threads).  SQLite's busy handler
 * polls every 100 ms while a writer with a backlog commits window after
 * window, so a waiter can go unserved for as long as the others have
 * windows to store: with 5 s, three of eight flowfetch runs on one cache
 * failed with "database is locked" in the ASan build (tests/integration/
 * test_crash.py).  Long enough to outlast that, short of hanging forever
 * on a writer that never ends. */
#define STORE_BUSY_MS 60000

/* The page size of a new cache.  16 KiB pages cost the store thread less
 * CPU than SQLite's default 4 KiB: bench/bench_store (2,100,000 rows in
 * 10,000-row windows, its opening comment) did 355,000-370,000 rows per
 * CPU second with 4 KiB pages and 390,000-410,000 with 16 KiB (32 and 64
 * KiB: no better), the file 1% larger; reading the flows back (bench_render,
 * CSV) costs the same CPU either way.  Caches made with another size keep
 * theirs. */
#define STORE_PAGE_SIZE "16384"

/* Records a window's insert binds into one statement (ST_FLOW_INSERT_MANY;
 * the rest of a window one at a time): see store_insert_batch.  A
 * statement of many rows needs SQLite's statement journal (a failed one
 * undoes its own rows), which copies each page the statement touches that
 * the window's transaction touched already: 8% of the store's instructions
 * with 32 rows a statement, 2% with 256 (docs/design.md). */
#define STORE_BATCH 256

/* ---- errors ------------------------------------------------------------------ */

int cache_fail(char *err, int rc, const char *fmt, ...)
{
	va_list ap;

	if (err) {
		va_start(ap, fmt);
		vsnprintf(err, CACHE_ERRLEN, fmt, ap);
		va_end(ap);
	}
	return rc;
}

/* Errors SQLite reports map onto the errno a caller can act on. */
int cache_sqlite_errno(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
		return 0;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_READONLY:
	case SQLITE_PERM:
	case SQLITE_AUTH:
	case SQLITE_CANTOPEN:
		return -EACCES;
	case SQLITE_CONSTRAINT:
	case SQLITE_MISMATCH:
	case SQLITE_RANGE:
	case SQLITE_TOOBIG:
		return -EINVAL;
	case SQLITE_INTERRUPT:
		return -EINTR;
	default:
		return -EIO;
	}
}

int cache_sqlite_fail(sqlite3 *db, int rc, char *err, const char *what)
{
	return cache_fail(err, cache_sqlite_errno(rc), "%s: %s", what,
			  db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
}

/* ---- schema -------------------------------------------------------------------- */

static const char *const store_migrations[] = {
	/* 0 -> 1: the first schema.  NULL for every unknown (-1) number. */
	"CREATE TABLE IF NOT EXISTS meta("
	"  key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL) WITHOUT ROWID;"
	"CREATE TABLE flows("
	"  subject TEXT NOT NULL, start INTEGER NOT NULL,"
	"  id TEXT NOT NULL CHECK (length(id) BETWEEN 1 AND 64),"
	"  \"end\" INTEGER NOT NULL,"
	"  src BLOB NOT NULL CHECK (length(src) = 16),"
	"  dst BLOB NOT NULL CHECK (length(dst) = 16),"
	"  sport INTEGER, dport INTEGER, proto INTEGER, tcp_flags INTEGER,"
	"  icmp_type INTEGER, icmp_code INTEGER, pkts INTEGER, bytes INTEGER,"
	"  in_if INTEGER, out_if INTEGER, exporter INTEGER, app INTEGER,"
	"  src_as INTEGER, dst_as INTEGER, sampling INTEGER,"
	"  src_groups TEXT, dst_groups TEXT, community_id TEXT,"
	"  PRIMARY KEY (subject, start, id)) WITHOUT ROWID;"
	"CREATE TABLE coverage("
	"  subject TEXT NOT NULL, peer TEXT NOT NULL,"
	"  start INTEGER NOT NULL, \"end\" INTEGER NOT NULL,"
	"  fetched_ms INTEGER NOT NULL, provisional INTEGER NOT NULL,"
	"  records INTEGER NOT NULL, CHECK (start < \"end\"));"
	"CREATE INDEX coverage_key ON coverage(subject, peer, start);"
	"CREATE TABLE gaps("
	"  subject TEXT NOT NULL, qpeer TEXT NOT NULL,"
	"  start INTEGER NOT NULL, \"end\" INTEGER NOT NULL,"
	"  peer TEXT NOT NULL, seen INTEGER NOT NULL, reason TEXT NOT NULL);"
	"CREATE INDEX gaps_key ON gaps(subject, qpeer, start);"
	"CREATE TABLE lookup("
	"  tbl INTEGER NOT NULL, key INTEGER NOT NULL, key2 INTEGER NOT NULL,"
	"  name TEXT NOT NULL, extra TEXT NOT NULL,"
	"  PRIMARY KEY (tbl, key, key2)) WITHOUT ROWID;"
	"CREATE TABLE lookup_age("
	"  tbl INTEGER PRIMARY KEY, fetched_ms INTEGER NOT NULL);",
	/* 1 -> 2: what a collector says that has no column (flow_rec.extra):
	 * NULL for the rows of version 1 and for records without it. */
	"ALTER TABLE flows ADD COLUMN extra TEXT;",
};

_Static_assert(sizeof(store_migrations) / sizeof(store_migrations[0]) ==
		       CACHE_SCHEMA_VERSION,
	       "one migration per schema version");

/* The insert of flows, its 25 parameters a row (store_bind_rec's order),
 * a record already stored skipped (store_insert_rec says why so). */
#define STORE_FLOW_INTO                                                        \
	" INTO flows(subject,start,id,\"end\",src,dst,sport,"              \
	"dport,proto,tcp_flags,icmp_type,icmp_code,pkts,bytes,in_if,out_if,"    \
	"exporter,app,src_as,dst_as,sampling,src_groups,dst_groups,"           \
	"community_id,extra) VALUES "
#define STORE_ROW_PARAMS "?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?"
#define STORE_FLOW_CONFLICT " ON CONFLICT (subject,start,id) DO NOTHING"
#define STORE_COLS 25

static const char *const store_sql[ST_COUNT_ALL] = {
	[ST_BEGIN_WRITE] = "BEGIN IMMEDIATE",
	[ST_BEGIN_READ] = "BEGIN",
	[ST_COMMIT] = "COMMIT",
	[ST_ROLLBACK] = "ROLLBACK",
	[ST_FLOW_INSERT] = "INSERT" STORE_FLOW_INTO "(" STORE_ROW_PARAMS ")" STORE_FLOW_CONFLICT,
	/* ST_FLOW_INSERT_MANY: STORE_BATCH rows, made by store_batch_sql */
	[ST_COVER_DROP_PROVISIONAL] =
		"DELETE FROM coverage WHERE subject=?1 AND peer=?2 AND provisional=1"
		" AND start<?4 AND \"end\">?3",
	[ST_COVER_INSERT] =
		"INSERT INTO coverage(subject,peer,start,\"end\",fetched_ms,"
		"provisional,records) VALUES (?1,?2,?3,?4,?5,?6,?7)",
	[ST_COVER_SELECT] =
		"SELECT start,\"end\",fetched_ms,provisional,records,rowid FROM coverage"
		" WHERE subject=?1 AND peer IN (?2,'') AND start<?4 AND \"end\">?3"
		" ORDER BY start,\"end\",fetched_ms,provisional,records",
	[ST_GAP_INSERT] =
		"INSERT INTO gaps(subject,qpeer,start,\"end\",peer,seen,reason)"
		" VALUES (?1,?2,?3,?4,?5,?6,?7)",
	[ST_GAP_SELECT] =
		"SELECT start,\"end\",peer,seen,reason FROM gaps"
		" WHERE subject=?1 AND qpeer=?2 AND start<?4 AND \"end\">?3"
		" ORDER BY start,\"end\",peer,seen,reason",
	[ST_GAP_DELETE] =
		"DELETE FROM gaps WHERE subject=?1 AND qpeer=?2 AND start<?4"
		" AND \"end\">?3",
	[ST_COUNT] = "SELECT count(*) FROM flows WHERE subject=?1 AND start>=?2"
		     " AND start<?3",
	[ST_COUNT_PEER] = "SELECT count(*) FROM flows WHERE subject=?1"
			  " AND start>=?2 AND start<?3" CACHE_PEER_WHERE,
	[ST_STARTS] = "SELECT start FROM flows WHERE subject=?1 AND start>=?2"
		      " AND start<?3 ORDER BY start",
	[ST_STARTS_PEER] = "SELECT start FROM flows WHERE subject=?1"
			   " AND start>=?2 AND start<?3" CACHE_PEER_WHERE " ORDER BY start",
	[ST_FLOWS] = CACHE_SQL_FLOWS,
	[ST_FLOWS_PEER] = CACHE_SQL_FLOWS_PEER,
	[ST_LOOKUP_DELETE] = "DELETE FROM lookup WHERE tbl=?1",
	[ST_LOOKUP_INSERT] = "INSERT OR REPLACE INTO lookup(tbl,key,key2,name,extra)"
			     " VALUES (?1,?2,?3,?4,?5)",
	[ST_LOOKUP_SELECT] = "SELECT tbl,key,key2,name,extra FROM lookup"
			     " ORDER BY tbl,key,key2",
	[ST_AGE_SET] = "INSERT OR REPLACE INTO lookup_age(tbl,fetched_ms) VALUES (?1,?2)",
	[ST_AGE_GET] = "SELECT fetched_ms FROM lookup_age WHERE tbl=?1",
	[ST_COVER_MARK] = "SELECT coalesce(max(rowid),0) FROM coverage",
};

/* Run one prepared statement that returns no row, and reset it. */
static int store_exec(struct cache *c, enum cache_stmt s, char *err, const char *what)
{
	int rc = sqlite3_step(c->st[s]);

	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		rc = cache_sqlite_fail(c->db, rc, err, what);
		sqlite3_reset(c->st[s]);
		return rc;
	}
	sqlite3_reset(c->st[s]);
	return 0;
}

static int store_begin(struct cache *c, char *err)
{
	return store_exec(c, ST_BEGIN_WRITE, err, "begin");
}

/* Commit; when that fails the transaction is rolled back. */
static int store_commit(struct cache *c, char *err)
{
	int rc = store_exec(c, ST_COMMIT, err, "commit");

	if (rc && !sqlite3_get_autocommit(c->db))
		store_exec(c, ST_ROLLBACK, NULL, "rollback");
	return rc;
}

/* Roll back if a transaction is open (SQLite may have done it already). */
static void store_rollback(struct cache *c)
{
	if (!sqlite3_get_autocommit(c->db))
		store_exec(c, ST_ROLLBACK, NULL, "rollback");
}

/* sqlite3_exec with the error turned into -errno and a message. */
static int store_sql_exec(sqlite3 *db, const char *sql, char *err, const char *what)
{
	int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : cache_sqlite_fail(db, rc, err, what);
}

/* The value of a meta key into buf ("" and 0 when absent). */
static int store_meta_get(sqlite3 *db, const char *key, char *buf, size_t len,
			  bool *found, char *err)
{
	sqlite3_stmt *st;
	int rc;

	*found = false;
	buf[0] = '\0';
	rc = sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key=?1", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return cache_sqlite_fail(db, rc, err, "read meta");
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *v = (const char *)sqlite3_column_text(st, 0);
		snprintf(buf, len, "%s", v ? v : "");
		*found = true;
		rc = SQLITE_DONE;
	}
	rc = rc == SQLITE_DONE ? 0 : cache_sqlite_fail(db, rc, err, "read meta");
	sqlite3_finalize(st);
	return rc;
}

static int store_meta_set(sqlite3 *db, const char *key, const char *value, char *err)
{
	sqlite3_stmt *st;
	int rc;

	rc = sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO meta(key,value) VALUES (?1,?2)",
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		return cache_sqlite_fail(db, rc, err, "write meta");
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	rc = rc == SQLITE_DONE ? 0 : cache_sqlite_fail(db, rc, err, "write meta");
	sqlite3_finalize(st);
	return rc;
}

/* Does the database hold a table of that name? */
static int store_has_table(sqlite3 *db, const char *name, bool *has, int *ntables,
			   char *err)
{
	sqlite3_stmt *st;
	int rc;

	*has = false;
	*ntables = 0;
	rc = sqlite3_prepare_v2(db, "SELECT name FROM sqlite_master WHERE type='table'",
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		return cache_sqlite_fail(db, rc, err, "read schema");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *n = (const char *)sqlite3_column_text(st, 0);
		(*ntables)++;
		if (n && strcmp(n, name) == 0)
			*has = true;
	}
	rc = rc == SQLITE_DONE ? 0 : cache_sqlite_fail(db, rc, err, "read schema");
	sqlite3_finalize(st);
	return rc;
}

/*
 * Bring the file to CACHE_SCHEMA_VERSION and check whose it is, in one
 * write transaction.  -EPROTO for a newer schema, -EEXIST for a file of
 * another collector (URL or product) or one that holds tables but is no
 * flowfs cache; SQLite errors as -errno.  Nothing changes on error.
 */
static int store_schema(struct cache *c, const struct cache_identity *id, char *err)
{
	const char *product = id->product ? id->product : "";
	const char *driver = id->driver ? id->driver : "";
	char buf[1024], num[24];
	bool has_meta, found;
	int ntables, rc;
	long version = 0;

	rc = store_sql_exec(c->db, "BEGIN IMMEDIATE", err, c->path);
	if (rc)
		return rc;
	rc = store_has_table(c->db, "meta", &has_meta, &ntables, err);
	if (rc)
		goto fail;
	if (!has_meta && ntables > 0) {
		rc = cache_fail(err, -EEXIST, "%s: exists and is not a flowfs cache", c->path);
		goto fail;
	}
	if (has_meta) {
		char *end;
		rc = store_meta_get(c->db, "schema_version", buf, sizeof(buf), &found, err);
		if (rc)
			goto fail;
		version = strtol(buf, &end, 10);
		if (!found || *end != '\0' || end == buf || version < 0) {
			rc = cache_fail(err, -EEXIST, "%s: no valid schema_version, not a flowfs cache",
					c->path);
			goto fail;
		}
		if (version > CACHE_SCHEMA_VERSION) {
			rc = cache_fail(err, -EPROTO,
					"%s: schema version %ld is newer than this program's (%d)",
					c->path, version, CACHE_SCHEMA_VERSION);
			goto fail;
		}
		rc = store_meta_get(c->db, "url", buf, sizeof(buf), &found, err);
		if (rc)
			goto fail;
		if (strcmp(buf, id->url) != 0) {
			rc = cache_fail(err, -EEXIST, "%s: holds the cache of %s, not %s",
					c->path, buf, id->url);
			goto fail;
		}
		rc = store_meta_get(c->db, "product", buf, sizeof(buf), &found, err);
		if (rc)
			goto fail;
		if (strcmp(buf, product) != 0) {
			rc = cache_fail(err, -EEXIST,
					"the cache for %s belongs to product \"%s\", not \"%s\" (%s)",
					id->url, buf, product, c->path);
			goto fail;
		}
	}
	for (long v = version; v < CACHE_SCHEMA_VERSION; v++) {
		rc = store_sql_exec(c->db, store_migrations[v], err, "migrate schema");
		if (rc)
			goto fail;
	}
	if (version == 0) {
		rc = store_meta_set(c->db, "url", id->url, err);
		if (!rc)
			rc = store_meta_set(c->db, "product", product, err);
		if (!rc)
			rc = store_meta_set(c->db, "driver", driver, err);
		if (rc)
			goto fail;
	}
	if (version != CACHE_SCHEMA_VERSION) {
		snprintf(num, sizeof(num), "%d", CACHE_SCHEMA_VERSION);
		rc = store_meta_set(c->db, "schema_version", num, err);
		if (rc)
			goto fail;
	}
	rc = store_sql_exec(c->db, "COMMIT", err, c->path);
	if (rc)
		goto fail;
	return 0;
fail:
	if (!sqlite3_get_autocommit(c->db))
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

/* ---- opening ------------------------------------------------------------------- */

/* mkdir -p with mode 0700 for every directory created (umask or not); an
 * existing one is left as it is (store_dir_open checks it). */
static int store_mkdirs(const char *dir, char *err)
{
	size_t len = strlen(dir);
	char *p = malloc(len + 1);
	int rc = 0;

	if (!p)
		return cache_fail(err, -ENOMEM, "out of memory");
	memcpy(p, dir, len + 1);
	for (size_t i = 1; i <= len; i++) {
		if (p[i] != '/' && p[i] != '\0')
			continue;
		if (p[i - 1] == '/')
			continue;
		char save = p[i];
		p[i] = '\0';
		if (mkdir(p, 0700) == 0) {
			if (chmod(p, 0700) != 0) {
				rc = cache_fail(err, -errno, "chmod %s: %s", p, strerror(errno));
				goto out;
			}
		} else if (errno != EEXIST) {
			rc = cache_fail(err, -errno, "mkdir %s: %s", p, strerror(errno));
			goto out;
		}
		p[i] = save;
	}
out:
	free(p);
	return rc;
}

/*
 * Is the directory sb (named d) fit to hold a cache: owned by the effective
 * user, not writable by its group or others?  Anyone else who can write
 * there could read the flows (a database it planted), plant flows and
 * coverage that are then served as complete evidence, or swap a file for a
 * link.  0, or -EPERM with err saying how to fix it.
 */
static int store_dir_check(const struct stat *sb, const char *d, char *err)
{
	if (sb->st_uid != geteuid())
		return cache_fail(err, -EPERM,
				  "the cache directory %s belongs to uid %u, not to you (uid %u): "
				  "use a directory of your own (-o cache=DIR, --cache DIR)",
				  d, (unsigned)sb->st_uid, (unsigned)geteuid());
	if (sb->st_mode & (S_IWGRP | S_IWOTH))
		return cache_fail(err, -EPERM,
				  "the cache directory %s is writable by group or others (mode %04o): "
				  "chmod 700 %s, or use another (-o cache=DIR, --cache DIR)",
				  d, (unsigned)(sb->st_mode & 07777), d);
	return 0;
}

/*
 * Make dir (mkdir -p, 0700) when it is missing, open it O_DIRECTORY |
 * O_NOFOLLOW and check it on that descriptor (store_dir_check).  With real
 * not NULL, *real is its path with no symbolic link in it (malloc'd), the
 * same directory as the descriptor: a path SQLite can open with
 * SQLITE_OPEN_NOFOLLOW.  Returns the descriptor (O_CLOEXEC), or a negative
 * errno with err: -ELOOP (dir is a symbolic link), -ENOTDIR, -EPERM (owner,
 * mode), -ESTALE (the directory changed meanwhile), -ENOMEM, or open's.
 */
static int store_dir_open(const char *dir, char **real, char *err)
{
	size_t len = dir ? strlen(dir) : 0;
	struct stat sb, rb;
	char *d = NULL, *r = NULL;
	int fd = -1, rc;

	if (real)
		*real = NULL;
	if (!len)
		return cache_fail(err, -EINVAL, "no cache directory");
	rc = store_mkdirs(dir, err);
	if (rc)
		return rc;
	while (len > 1 && dir[len - 1] == '/')	/* "link/" would follow the link */
		len--;
	d = strndup(dir, len);
	if (!d)
		return cache_fail(err, -ENOMEM, "out of memory");
	fd = open(d, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		/* O_DIRECTORY | O_NOFOLLOW says ENOTDIR for a link, too */
		if (lstat(d, &sb) == 0 && S_ISLNK(sb.st_mode))
			rc = cache_fail(err, -ELOOP,
					"the cache directory %s is a symbolic link: give the directory "
					"itself, or another (-o cache=DIR, --cache DIR)", d);
		else if (e == ENOTDIR)
			rc = cache_fail(err, -ENOTDIR, "%s: not a directory", d);
		else
			rc = cache_fail(err, -e, "the cache directory %s: %s", d, strerror(e));
		goto fail;
	}
	if (fstat(fd, &sb) != 0) {
		rc = cache_fail(err, -errno, "%s: %s", d, strerror(errno));
		goto fail;
	}
	rc = store_dir_check(&sb, d, err);
	if (rc)
		goto fail;
	if (real) {
		r = realpath(d, NULL);
		if (!r) {
			rc = cache_fail(err, -errno, "%s: %s", d, strerror(errno));
			goto fail;
		}
		if (stat(r, &rb) != 0 || rb.st_dev != sb.st_dev || rb.st_ino != sb.st_ino) {
			rc = cache_fail(err, -ESTALE, "the cache directory %s changed while it was "
					"opened", d);
			goto fail;
		}
		*real = r;
		r = NULL;
	}
	free(d);
	return fd;
fail:
	if (fd >= 0)
		close(fd);
	free(r);
	free(d);
	return rc;
}

int cache_dir_open(const char *dir, char *err)
{
	return store_dir_open(dir, NULL, err);
}

/* "<dir>/<first 16 hex digits of sha256(url)>.db", malloc'd. */
static int store_file_name(const char *dir, const char *url, char **out, char *err)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char hex[17];
	size_t len;

	if (!EVP_Digest(url, strlen(url), md, &mdlen, EVP_sha256(), NULL) || mdlen < 8)
		return cache_fail(err, -EIO, "sha256 failed");
	for (int i = 0; i < 8; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	size_t dl = strlen(dir);
	while (dl > 1 && dir[dl - 1] == '/')	/* "dir/" and "dir" name the same file */
		dl--;
	len = dl + 1 + 16 + 3 + 1;
	*out = malloc(len);
	if (!*out)
		return cache_fail(err, -ENOMEM, "out of memory");
	snprintf(*out, len, "%.*s%s%s.db", (int)dl, dir, dir[dl - 1] == '/' ? "" : "/", hex);
	return 0;
}

/*
 * The database file 'name' in the checked directory dfd (path names it in
 * messages): created 0600 before SQLite opens it (its -wal and -shm files
 * take the database file's mode), never through a link (O_EXCL |
 * O_NOFOLLOW); an existing one is kept.  The file and its -wal, -shm and
 * -journal files, those that exist, must be regular files of the effective
 * user: a symbolic link (-ELOOP), anything else (-EINVAL) or another
 * owner's file (-EPERM) is refused with err.
 */
static int store_db_file(int dfd, const char *name, const char *path, char *err)
{
	static const char *const side[] = {"", "-wal", "-shm", "-journal"};
	int fd = openat(dfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);

	if (fd >= 0) {
		if (fchmod(fd, 0600) != 0) {
			int e = errno;
			close(fd);
			return cache_fail(err, -e, "chmod %s: %s", path, strerror(e));
		}
		close(fd);
	} else if (errno != EEXIST) {
		return cache_fail(err, -errno, "create %s: %s", path, strerror(errno));
	}
	for (size_t i = 0; i < sizeof(side) / sizeof(side[0]); i++) {
		char n[64];
		struct stat sb;
		snprintf(n, sizeof(n), "%s%s", name, side[i]);
		if (fstatat(dfd, n, &sb, AT_SYMLINK_NOFOLLOW) != 0) {
			if (errno == ENOENT)
				continue;
			return cache_fail(err, -errno, "%s%s: %s", path, side[i], strerror(errno));
		}
		if (S_ISLNK(sb.st_mode))
			return cache_fail(err, -ELOOP, "%s%s is a symbolic link: refused (flowfs "
					  "never makes one; remove it)", path, side[i]);
		if (!S_ISREG(sb.st_mode))
			return cache_fail(err, -EINVAL, "%s%s is not a regular file", path, side[i]);
		if (sb.st_uid != geteuid())
			return cache_fail(err, -EPERM, "%s%s belongs to uid %u, not to you: refused",
					  path, side[i], (unsigned)sb.st_uid);
	}
	return 0;
}

/* ST_FLOW_INSERT_MANY's text into buf (len bytes, enough for it). */
static const char *store_batch_sql(char *buf, size_t len)
{
	size_t n = (size_t)snprintf(buf, len, "%s", "INSERT" STORE_FLOW_INTO);

	for (int i = 0; i < STORE_BATCH && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, "%s(" STORE_ROW_PARAMS ")",
				      i ? "," : "");
	if (n < len)
		snprintf(buf + n, len - n, "%s", STORE_FLOW_CONFLICT);
	return buf;
}

/*
 * Make the directory (0700) and check it (store_dir_open), name the file
 * after the URL's hash, create it 0600 (store_db_file), open it in WAL mode
 * with SQLITE_OPEN_NOFOLLOW by the directory's real path, bring its schema
 * up to date and check whose it is, then prepare every statement.  On any
 * error nothing is left open, *out is NULL and err says why (-EINVAL,
 * -ENOTDIR, -ELOOP, -EPERM, -ESTALE, -EACCES, -EEXIST, -EPROTO, -EBUSY,
 * -EIO, -ENOMEM).
 */
int cache_open(const char *dir, const struct cache_identity *id,
	       struct cache **out, char *err)
{
	struct cache *c;
	sqlite3_stmt *st;
	char *real = NULL;
	int rc, dfd = -1;

	if (!dir || !*dir || !id || !id->url || !*id->url || !out)
		return cache_fail(err, -EINVAL, "cache_open: missing directory or URL");
	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return cache_fail(err, -ENOMEM, "out of memory");
	dfd = store_dir_open(dir, &real, err);
	if (dfd < 0) {
		rc = dfd;
		goto fail;
	}
	rc = store_file_name(real, id->url, &c->path, err);
	if (rc)
		goto fail;
	rc = store_db_file(dfd, strrchr(c->path, '/') + 1, c->path, err);
	if (rc)
		goto fail;
	rc = sqlite3_open_v2(c->path, &c->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW,
			     NULL);
	if (rc != SQLITE_OK) {
		rc = cache_sqlite_fail(c->db, rc, err, c->path);
		goto fail;
	}
	sqlite3_extended_result_codes(c->db, 1);
	sqlite3_busy_timeout(c->db, STORE_BUSY_MS);
	/* a new (empty) file takes the page size; a file with pages keeps its
	 * own (a WAL database cannot change it): see STORE_PAGE_SIZE */
	rc = store_sql_exec(c->db, "PRAGMA page_size=" STORE_PAGE_SIZE, err, c->path);
	if (rc)
		goto fail;
	/* journal_mode answers with the mode in force: check that it is WAL */
	rc = sqlite3_prepare_v2(c->db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
	if (rc != SQLITE_OK) {
		rc = cache_sqlite_fail(c->db, rc, err, c->path);
		goto fail;
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const char *m = (const char *)sqlite3_column_text(st, 0);
		bool wal = m && strcmp(m, "wal") == 0;
		sqlite3_finalize(st);
		if (!wal) {
			rc = cache_fail(err, -EIO, "%s: cannot use WAL mode", c->path);
			goto fail;
		}
	} else {
		rc = cache_sqlite_fail(c->db, rc, err, c->path);
		sqlite3_finalize(st);
		goto fail;
	}
	rc = store_sql_exec(c->db,
			    "PRAGMA synchronous=NORMAL; PRAGMA cache_size=-16384;"
			    " PRAGMA temp_store=MEMORY;",
			    err, c->path);
	if (rc)
		goto fail;
	rc = store_schema(c, id, err);
	if (rc)
		goto fail;
	for (int i = 0; i < ST_COUNT_ALL; i++) {
		char many[sizeof("INSERT" STORE_FLOW_INTO STORE_FLOW_CONFLICT) +
			  STORE_BATCH * sizeof("(" STORE_ROW_PARAMS "),")];
		rc = sqlite3_prepare_v3(c->db, i == ST_FLOW_INSERT_MANY ?
					store_batch_sql(many, sizeof(many)) : store_sql[i],
					-1, SQLITE_PREPARE_PERSISTENT, &c->st[i], NULL);
		if (rc != SQLITE_OK) {
			rc = cache_sqlite_fail(c->db, rc, err, "prepare");
			goto fail;
		}
	}
	close(dfd);
	free(real);
	*out = c;
	return 0;
fail:
	if (dfd >= 0)
		close(dfd);
	free(real);
	cache_close(c);
	return rc;
}

/* Finalize the statements and close; NULL is a no-op. */
void cache_close(struct cache *c)
{
	if (!c)
		return;
	for (int i = 0; i < ST_COUNT_ALL; i++)
		sqlite3_finalize(c->st[i]);
	sqlite3_close(c->db);
	free(c->path);
	free(c);
}

const char *cache_sqlite_version(void)
{
	return sqlite3_libversion();
}

const char *cache_path(const struct cache *c)
{
	return c->path;
}

/* sqlite3_progress_handler's callback: non-zero interrupts the statement
 * (SQLITE_INTERRUPT, which cache_sqlite_errno makes -EINTR). */
static int store_cancelled(void *arg)
{
	const atomic_int *cancel = arg;

	return atomic_load(cancel) != 0;
}

void cache_set_cancel(struct cache *c, const atomic_int *cancel)
{
	c->cancel = cancel;
	if (cancel)
		sqlite3_progress_handler(c->db, CACHE_CANCEL_STEPS, store_cancelled,
					 (void *)cancel);
	else
		sqlite3_progress_handler(c->db, 0, NULL, NULL);
}

/* ---- queries ------------------------------------------------------------------- */

void cache_query_keys(const struct cache_query *q, char subject[CACHE_KEY_LEN],
		      char peer[CACHE_KEY_LEN])
{
	cache_prefix_format(&q->subject, subject, CACHE_KEY_LEN);
	if (q->has_peer)
		cache_prefix_format(&q->peer, peer, CACHE_KEY_LEN);
	else
		peer[0] = '\0';
}

/*
 * A peer of the other family than the subject selects nothing (the
 * collector never mixes families): its range is then bound empty (lo > hi).
 */
int cache_bind_query(sqlite3_stmt *st, const struct cache_query *q,
		     const char *subject_key)
{
	uint8_t slo[16], shi[16], plo[16], phi[16];
	int rc;

	rc = sqlite3_bind_text(st, 1, subject_key, -1, SQLITE_TRANSIENT);
	if (!rc)
		rc = sqlite3_bind_int64(st, 2, q->start);
	if (!rc)
		rc = sqlite3_bind_int64(st, 3, q->end);
	if (rc || !q->has_peer)
		return rc;
	cache_prefix_range(&q->subject, slo, shi);
	if (q->peer.v4 == q->subject.v4) {
		cache_prefix_range(&q->peer, plo, phi);
	} else {
		memset(plo, 0xff, 16);
		memset(phi, 0, 16);
	}
	rc = sqlite3_bind_blob(st, 4, slo, 16, SQLITE_TRANSIENT);
	if (!rc)
		rc = sqlite3_bind_blob(st, 5, shi, 16, SQLITE_TRANSIENT);
	if (!rc)
		rc = sqlite3_bind_blob(st, 6, plo, 16, SQLITE_TRANSIENT);
	if (!rc)
		rc = sqlite3_bind_blob(st, 7, phi, 16, SQLITE_TRANSIENT);
	return rc;
}

void cache_bind_keys(sqlite3_stmt *st, const char *subject, const char *peer, int64_t start,
		     int64_t end)
{
	sqlite3_bind_text(st, 1, subject, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, peer, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, start);
	sqlite3_bind_int64(st, 4, end);
}

/* -EINVAL for a missing query or one whose range runs backwards. */
static int store_check_query(const struct cache_query *q, char *err)
{
	if (!q || q->start > q->end)
		return cache_fail(err, -EINVAL, "bad query range");
	return 0;
}

/* ---- flows ----------------------------------------------------------------------- */

int cache_rec_cmp(const void *a, const void *b)
{
	const struct flow_rec *x = a, *y = b;

	if (x->start_ms != y->start_ms)
		return x->start_ms < y->start_ms ? -1 : 1;
	return strcmp(x->id, y->id);
}

/* Bind v, or NULL for an unknown (negative) value. */
static void store_bind_opt(sqlite3_stmt *st, int i, int64_t v)
{
	if (v < 0)
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_int64(st, i, v);
}

/* "3;12;7" into buf; returns the length (0: no groups). */
size_t cache_groups_text(const uint32_t *g, uint8_t n, char *buf)
{
	size_t len = 0;

	if (n > CACHE_GROUPS_MAX)
		n = CACHE_GROUPS_MAX;
	for (int i = 0; i < n; i++) {
		if (i)
			buf[len++] = ';';
		len += cache_i64_text(g[i], buf + len);
	}
	return len;
}

/* The text of a record's groups, alive until its statement has run. */
struct store_groups {
	char src[CACHE_GROUPS_MAX * 11], dst[CACHE_GROUPS_MAX * 11];
};

/* Bind record r as the row of st whose parameters follow index base
 * (STORE_COLS of them, in STORE_FLOW_INTO's order); g holds its groups'
 * text.  -EINVAL with err for an id longer than CACHE_ID_MAX. */
static int store_bind_rec(sqlite3_stmt *st, int base, const char *subject,
			  size_t subject_len, const struct flow_rec *r, struct store_groups *g,
			  char *err)
{
	size_t idlen = strnlen(r->id, sizeof(r->id)), sgl, dgl, cidl, xl;

	if (idlen > CACHE_ID_MAX)
		return cache_fail(err, -EINVAL, "record id longer than %d bytes", CACHE_ID_MAX);
	cidl = strnlen(r->community_id, sizeof(r->community_id));
	xl = strnlen(r->extra, sizeof(r->extra) - 1);
	sqlite3_bind_text(st, base + 1, subject, (int)subject_len, SQLITE_STATIC);
	sqlite3_bind_int64(st, base + 2, r->start_ms);
	sqlite3_bind_text(st, base + 3, r->id, (int)idlen, SQLITE_STATIC);
	sqlite3_bind_int64(st, base + 4, r->end_ms);
	sqlite3_bind_blob(st, base + 5, r->src, 16, SQLITE_STATIC);
	sqlite3_bind_blob(st, base + 6, r->dst, 16, SQLITE_STATIC);
	store_bind_opt(st, base + 7, r->sport);
	store_bind_opt(st, base + 8, r->dport);
	store_bind_opt(st, base + 9, r->proto);
	store_bind_opt(st, base + 10, r->tcp_flags);
	store_bind_opt(st, base + 11, r->icmp_type);
	store_bind_opt(st, base + 12, r->icmp_code);
	store_bind_opt(st, base + 13, r->pkts);
	store_bind_opt(st, base + 14, r->bytes);
	store_bind_opt(st, base + 15, r->in_if);
	store_bind_opt(st, base + 16, r->out_if);
	store_bind_opt(st, base + 17, r->exporter);
	store_bind_opt(st, base + 18, r->app);
	store_bind_opt(st, base + 19, r->src_as);
	store_bind_opt(st, base + 20, r->dst_as);
	store_bind_opt(st, base + 21, r->sampling);
	sgl = cache_groups_text(r->src_groups, r->nsrc_groups, g->src);
	dgl = cache_groups_text(r->dst_groups, r->ndst_groups, g->dst);
	if (sgl)
		sqlite3_bind_text(st, base + 22, g->src, (int)sgl, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, base + 22);
	if (dgl)
		sqlite3_bind_text(st, base + 23, g->dst, (int)dgl, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, base + 23);
	if (cidl)
		sqlite3_bind_text(st, base + 24, r->community_id, (int)cidl, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, base + 24);
	if (xl)
		sqlite3_bind_text(st, base + 25, r->extra, (int)xl, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, base + 25);
	return 0;
}

/*
 * Bind and insert one record; the statement is reset.  A record already
 * stored (same subject, start, id) is skipped: "ON CONFLICT DO NOTHING" is
 * INSERT OR IGNORE for the primary key only, so that a record the schema's
 * CHECKs refuse (an empty id) fails the window instead of vanishing.
 */
static int store_insert_rec(struct cache *c, const char *subject, size_t subject_len,
			    const struct flow_rec *r, char *err)
{
	sqlite3_stmt *st = c->st[ST_FLOW_INSERT];
	struct store_groups g;
	int rc;

	rc = store_bind_rec(st, 0, subject, subject_len, r, &g, err);
	if (rc)
		return rc;
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE) {
		rc = cache_sqlite_fail(c->db, rc, err, "insert flow");
		char *e = err ? err + strlen(err) : NULL;
		if (e && e - err < CACHE_ERRLEN - 1)
			snprintf(e, (size_t)(CACHE_ERRLEN - (e - err)), " (record %s)",
				 r->id[0] ? r->id : "with an empty id");
	} else {
		rc = 0;
	}
	sqlite3_reset(st);
	return rc;
}

/*
 * Insert STORE_BATCH records with one statement, as store_insert_rec
 * would one by one (g: room for their groups' text).  Why: each statement opens a cursor on flows, descends
 * from the root and frees it all again, and that per-statement work was
 * a fifth of the store thread's instructions (docs/design.md, "The
 * cache").  When the statement fails inside a transaction still open (a
 * CHECK refuses a record: the statement's own rows are undone by SQLite's
 * statement journal), the same records go in one by one, so that the
 * error names the record as store_insert_rec's does; when SQLite ended the
 * transaction (a full disk, out of memory), that error is returned as it
 * is: nothing is inserted outside the window's transaction.
 */
static int store_insert_batch(struct cache *c, const char *subject, size_t subject_len,
			      const struct flow_rec *recs, struct store_groups g[STORE_BATCH],
			      char *err)
{
	sqlite3_stmt *st = c->st[ST_FLOW_INSERT_MANY];
	int rc = 0;

	for (int i = 0; i < STORE_BATCH && !rc; i++)
		rc = store_bind_rec(st, i * STORE_COLS, subject, subject_len, &recs[i], &g[i],
				    err);
	if (rc)
		return rc;
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc == SQLITE_DONE)
		return 0;
	if (sqlite3_get_autocommit(c->db))
		return cache_sqlite_fail(c->db, rc, err, "insert flows");
	for (int i = 0; i < STORE_BATCH; i++) {
		rc = store_insert_rec(c, subject, subject_len, &recs[i], err);
		if (rc)
			return rc;
	}
	return 0;
}

/*
 * Sort, insert (duplicates ignored), and record the coverage, in one BEGIN
 * IMMEDIATE transaction.  On any error (a record the schema refuses: an
 * empty or over-long id; a full disk; a busy database after STORE_BUSY_MS) the
 * transaction is rolled back: neither records nor coverage are stored.
 */
int cache_put_window(struct cache *c, const struct cache_query *q,
		     struct flow_rec *recs, size_t n,
		     const struct cache_cover *cover, char *err)
{
	char subject[CACHE_KEY_LEN], peer[CACHE_KEY_LEN];
	struct store_groups *groups = NULL;
	size_t subject_len;
	int rc;

	rc = store_check_query(q, err);
	if (rc)
		return rc;
	if (n && !recs)
		return cache_fail(err, -EINVAL, "no records");
	if (cover && cover->start >= cover->end)
		return cache_fail(err, -EINVAL, "empty coverage window [%lld, %lld)",
				  (long long)cover->start, (long long)cover->end);
	cache_query_keys(q, subject, peer);
	subject_len = strlen(subject);
	/* decoders hand windows over sorted already: check before sorting */
	for (size_t i = 1; i < n; i++) {
		if (cache_rec_cmp(&recs[i - 1], &recs[i]) > 0) {
			qsort(recs, n, sizeof(*recs), cache_rec_cmp);
			break;
		}
	}
	rc = store_begin(c, err);
	if (rc)
		return rc;
	size_t i = 0;
	if (n >= STORE_BATCH) {
		groups = malloc(STORE_BATCH * sizeof(*groups));
		if (!groups) {
			rc = cache_fail(err, -ENOMEM, "out of memory");
			goto fail;
		}
	}
	for (; i + STORE_BATCH <= n; i += STORE_BATCH) {
		rc = store_insert_batch(c, subject, subject_len, &recs[i], groups, err);
		if (rc)
			goto fail;
	}
	for (; i < n; i++) {
		rc = store_insert_rec(c, subject, subject_len, &recs[i], err);
		if (rc)
			goto fail;
	}
	sqlite3_clear_bindings(c->st[ST_FLOW_INSERT]);
	sqlite3_clear_bindings(c->st[ST_FLOW_INSERT_MANY]);
	if (cover) {
		/* inserted before the provisional rows it replaces are deleted:
		 * a rowid is then never given twice (the table has no
		 * AUTOINCREMENT; deleting the newest row first would hand its
		 * rowid to this one), so the coverage mark stays a true "newer
		 * than" (cache_coverage_mark).  The new row is final: the
		 * DELETE, of provisional rows only, leaves it. */
		sqlite3_stmt *st = c->st[ST_COVER_INSERT];
		cache_bind_keys(st, subject, peer, cover->start, cover->end);
		sqlite3_bind_int64(st, 5, cover->fetched_ms);
		sqlite3_bind_int(st, 6, cover->provisional ? 1 : 0);
		sqlite3_bind_int64(st, 7, cover->records);
		rc = store_exec(c, ST_COVER_INSERT, err, "insert coverage");
		if (rc)
			goto fail;
		if (!cover->provisional) {
			st = c->st[ST_COVER_DROP_PROVISIONAL];
			cache_bind_keys(st, subject, peer, cover->start, cover->end);
			rc = store_exec(c, ST_COVER_DROP_PROVISIONAL, err, "replace provisional coverage");
			if (rc)
				goto fail;
		}
	}
	free(groups);
	return store_commit(c, err);
fail:
	free(groups);
	sqlite3_clear_bindings(c->st[ST_FLOW_INSERT]);
	sqlite3_clear_bindings(c->st[ST_FLOW_INSERT_MANY]);
	store_rollback(c);
	return rc;
}

/* NULL reads as 0 from sqlite3_column_int64: ask for the type only then
 * (it halves the calls on the renderers' hot path). */
int64_t cache_col_opt(sqlite3_stmt *st, int i)
{
	int64_t v = sqlite3_column_int64(st, i);

	if (v == 0 && sqlite3_column_type(st, i) == SQLITE_NULL)
		return -1;
	return v;
}

/* See cache_i.h. */
uint8_t cache_groups_parse(const unsigned char *s, uint32_t *g)
{
	uint8_t n = 0;

	if (!s)
		return 0;
	while (*s && n < CACHE_GROUPS_MAX) {
		uint32_t v = 0;
		while (*s >= '0' && *s <= '9')
			v = v * 10 + (uint32_t)(*s++ - '0');
		g[n++] = v;
		if (*s == ';')
			s++;
		else
			break;
	}
	return n;
}

/* Text column i into buf (size bytes with the NUL): "" for NULL, and for a
 * text too long to fit, which is dropped rather than cut. */
static void store_col_whole(sqlite3_stmt *st, int i, char *buf, size_t size)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	int len = sqlite3_column_bytes(st, i);

	if (!t || len < 0 || (size_t)len >= size)
		len = 0;
	memcpy(buf, t ? (const char *)t : "", (size_t)len);
	buf[len] = '\0';
}

/* The inverse of store_insert_rec: NULL becomes -1 (or "" and no groups);
 * a value that does not fit the struct (never written by this file) is cut,
 * an id, or dropped, a Community ID or extra (half a JSON text is none). */
void cache_row_decode(sqlite3_stmt *st, struct flow_rec *r)
{
	const void *b;
	const unsigned char *t;
	int len;

	r->start_ms = sqlite3_column_int64(st, 0);
	t = sqlite3_column_text(st, 1);
	len = sqlite3_column_bytes(st, 1);
	if (len > CACHE_ID_MAX)
		len = CACHE_ID_MAX;
	memcpy(r->id, t ? (const char *)t : "", t ? (size_t)len : 0);
	r->id[t ? len : 0] = '\0';
	r->end_ms = sqlite3_column_int64(st, 2);
	b = sqlite3_column_blob(st, 3);
	if (b && sqlite3_column_bytes(st, 3) == 16)
		memcpy(r->src, b, 16);
	else
		memset(r->src, 0, 16);
	b = sqlite3_column_blob(st, 4);
	if (b && sqlite3_column_bytes(st, 4) == 16)
		memcpy(r->dst, b, 16);
	else
		memset(r->dst, 0, 16);
	r->sport = (int32_t)cache_col_opt(st, 5);
	r->dport = (int32_t)cache_col_opt(st, 6);
	r->proto = (int32_t)cache_col_opt(st, 7);
	r->tcp_flags = (int32_t)cache_col_opt(st, 8);
	r->icmp_type = (int32_t)cache_col_opt(st, 9);
	r->icmp_code = (int32_t)cache_col_opt(st, 10);
	r->pkts = cache_col_opt(st, 11);
	r->bytes = cache_col_opt(st, 12);
	r->in_if = cache_col_opt(st, 13);
	r->out_if = cache_col_opt(st, 14);
	r->exporter = cache_col_opt(st, 15);
	r->app = cache_col_opt(st, 16);
	r->src_as = cache_col_opt(st, 17);
	r->dst_as = cache_col_opt(st, 18);
	r->sampling = cache_col_opt(st, 19);
	r->nsrc_groups = cache_groups_parse(sqlite3_column_text(st, 20), r->src_groups);
	r->ndst_groups = cache_groups_parse(sqlite3_column_text(st, 21), r->dst_groups);
	store_col_whole(st, 22, r->community_id, sizeof(r->community_id));
	store_col_whole(st, 23, r->extra, sizeof(r->extra));
}

/* count(*) of the flows q selects, through the same WHERE as the renderers. */
int cache_count(struct cache *c, const struct cache_query *q, int64_t *count,
		char *err)
{
	char subject[CACHE_KEY_LEN], peer[CACHE_KEY_LEN];
	sqlite3_stmt *st;
	int rc;

	rc = store_check_query(q, err);
	if (rc)
		return rc;
	cache_query_keys(q, subject, peer);
	st = c->st[q->has_peer ? ST_COUNT_PEER : ST_COUNT];
	rc = cache_bind_query(st, q, subject);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*count = sqlite3_column_int64(st, 0);
		rc = 0;
	} else {
		rc = cache_sqlite_fail(c->db, rc, err, "count flows");
	}
	sqlite3_reset(st);
	return rc;
}

int cache_starts(struct cache *c, const struct cache_query *q, int64_t **out, size_t *n,
		 char *err)
{
	char subject[CACHE_KEY_LEN], peer[CACHE_KEY_LEN];
	sqlite3_stmt *st;
	int64_t *v = NULL;
	size_t cnt = 0, cap = 0;
	int rc;

	*out = NULL;
	*n = 0;
	rc = store_check_query(q, err);
	if (rc)
		return rc;
	cache_query_keys(q, subject, peer);
	st = c->st[q->has_peer ? ST_STARTS_PEER : ST_STARTS];
	rc = cache_bind_query(st, q, subject);
	while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (arr_grow(&v, &cap, cnt + 1, sizeof(*v))) {
			rc = SQLITE_NOMEM;
			break;
		}
		v[cnt++] = sqlite3_column_int64(st, 0);
		rc = SQLITE_OK;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE) {
		free(v);
		return cache_sqlite_fail(c->db, rc, err, "read start times");
	}
	*out = v;
	*n = cnt;
	return 0;
}

/* ---- coverage -------------------------------------------------------------------- */

int cache_coverage_all(struct cache *c, const struct cache_query *q,
		       struct cache_cover **out, size_t *n, char *err)
{
	char subject[CACHE_KEY_LEN], peer[CACHE_KEY_LEN];
	sqlite3_stmt *st = c->st[ST_COVER_SELECT];
	struct cache_cover *v = NULL;
	size_t cnt = 0, cap = 0;
	int rc;

	*out = NULL;
	*n = 0;
	rc = store_check_query(q, err);
	if (rc)
		return rc;
	cache_query_keys(q, subject, peer);
	cache_bind_keys(st, subject, peer, q->start, q->end);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (q->as_of_ms && (sqlite3_column_int64(st, 2) > q->as_of_ms ||
				    sqlite3_column_int64(st, 5) > q->as_of_seq))
			continue;
		if (arr_grow(&v, &cap, cnt + 1, sizeof(*v))) {
			rc = cache_fail(err, -ENOMEM, "out of memory");
			goto fail;
		}
		v[cnt].start = sqlite3_column_int64(st, 0);
		v[cnt].end = sqlite3_column_int64(st, 1);
		v[cnt].fetched_ms = sqlite3_column_int64(st, 2);
		v[cnt].provisional = sqlite3_column_int(st, 3) != 0;
		v[cnt].records = sqlite3_column_int64(st, 4);
		cnt++;
	}
	if (rc != SQLITE_DONE) {
		rc = cache_sqlite_fail(c->db, rc, err, "read coverage");
		goto fail;
	}
	sqlite3_reset(st);
	*out = v;
	*n = cnt;
	return 0;
fail:
	sqlite3_reset(st);
	free(v);
	return rc;
}

int cache_coverage_mark(struct cache *c, int64_t *seq, char *err)
{
	sqlite3_stmt *st = c->st[ST_COVER_MARK];
	int rc = sqlite3_step(st);

	*seq = 0;
	if (rc == SQLITE_ROW) {
		*seq = sqlite3_column_int64(st, 0);
		rc = 0;
	} else {
		rc = cache_sqlite_fail(c->db, rc, err, "read the coverage mark");
	}
	sqlite3_reset(st);
	return rc;
}

/* A final row always counts; a provisional one while younger than the TTL. */
static bool store_cover_usable(const struct cache_cover *v, int64_t now_ms,
			       int64_t live_ttl_ms)
{
	return !v->provisional || now_ms - v->fetched_ms < live_ttl_ms;
}

/*
 * The rows of cache_coverage_all() that count at now_ms: every final row,
 * and provisional rows younger than live_ttl_ms.
 */
int cache_coverage(struct cache *c, const struct cache_query *q, int64_t now_ms,
		   int64_t live_ttl_ms, struct cache_cover **out, size_t *n,
		   char *err)
{
	size_t k = 0;
	int rc = cache_coverage_all(c, q, out, n, err);

	if (rc)
		return rc;
	for (size_t i = 0; i < *n; i++)
		if (store_cover_usable(&(*out)[i], now_ms, live_ttl_ms))
			(*out)[k++] = (*out)[i];
	*n = k;
	return 0;
}

/*
 * [q->start, q->end) minus the union of the usable coverage rows of
 * (subject, peer) and (subject, any).  out is reset; on error (-ENOMEM, an
 * SQLite error) it holds nothing useful.
 */
int cache_missing(struct cache *c, const struct cache_query *q, int64_t now_ms,
		  int64_t live_ttl_ms, struct cache_ivals *out, char *err)
{
	struct cache_ivals have = {0};
	struct cache_cover *v;
	size_t n;
	int rc;

	rc = cache_coverage(c, q, now_ms, live_ttl_ms, &v, &n, err);
	if (rc)
		return rc;
	for (size_t i = 0; i < n && !rc; i++)
		rc = cache_ivals_add(&have, v[i].start, v[i].end);
	if (!rc)
		rc = cache_ivals_subtract(&have, q->start, q->end, out);
	if (rc)
		rc = cache_fail(err, rc, "coverage arithmetic: %s", strerror(-rc));
	cache_ivals_free(&have);
	free(v);
	return rc;
}

/*
 * Which of the days [bounds[i], bounds[i + 1]) the rows v (sorted by start,
 * as ST_COVER_SELECT orders them) hold whole: fetched[i] is then the
 * newest fetched_ms of the rows over the day, else 0.  Pure.  Each day
 * looks at the rows from the first that does not end before it, up to
 * its end; a row that spans many days is looked at again for each.
 */
static void store_days_fetched(const struct cache_cover *v, size_t nv, const int64_t *bounds,
			       size_t n, int64_t *fetched)
{
	size_t first = 0;	/* the rows before it end before the current day */

	for (size_t i = 0; i < n; i++) {
		int64_t a = bounds[i], b = bounds[i + 1], reach = a, newest = 0;
		bool hole = false;
		while (first < nv && v[first].end <= a)
			first++;
		for (size_t k = first; k < nv && v[k].start < b && !hole; k++) {
			if (v[k].end <= a)
				continue;
			hole = v[k].start > reach;	/* sorted by start: none closes it */
			reach = v[k].end > reach ? v[k].end : reach;
			newest = v[k].fetched_ms > newest ? v[k].fetched_ms : newest;
		}
		fetched[i] = !hole && reach >= b ? newest : 0;
	}
}

int cache_days_fetched(struct cache *c, const struct cache_query *q, const int64_t *bounds,
		       size_t n, int64_t now_ms, int64_t live_ttl_ms, int64_t *fetched, char *err)
{
	struct cache_query span;
	struct cache_cover *v = NULL;
	size_t nv = 0;
	int rc;

	if (n == 0)
		return cache_fail(err, -EINVAL, "no days");
	memset(fetched, 0, n * sizeof(*fetched));
	for (size_t i = 0; i < n; i++)
		if (bounds[i] >= bounds[i + 1])
			return cache_fail(err, -EINVAL, "days not in order");
	span = *q;
	span.start = bounds[0];
	span.end = bounds[n];
	span.as_of_ms = 0;
	rc = cache_coverage(c, &span, now_ms, live_ttl_ms, &v, &nv, err);
	if (rc)
		return rc;
	store_days_fetched(v, nv, bounds, n, fetched);
	free(v);
	return 0;
}

/* ---- gaps -------------------------------------------------------------------------- */

/*
 * Gaps are kept per query, (subject, peer) as the query that met them: a
 * gap of the query with peer P in window W says nothing about a query with
 * another peer, which fetches W itself (and records its own gap if it fails
 * too).
 */
int cache_put_gap(struct cache *c, const struct cache_query *q,
		  const struct cache_gap *g, char *err)
{
	char subject[CACHE_KEY_LEN], peer[CACHE_KEY_LEN];
	sqlite3_stmt *st = c->st[ST_GAP_INSERT];
	int rc;

	rc = store_check_query(q, err);
	if (rc)
		return rc;
	if (!g || g->start >= g->end)
		return cache_fail(err, -EINVAL, "empty gap");
	cache_query_keys(q, subject, peer);
	rc = store_begin(c, err);
	if (rc)
		return rc;
	cache_bind_keys(st, subject, peer, g->start, g->end);
	sqlite3_bind_text(st, 5, g->peer, (int)strnlen(g->peer, sizeof(g->peer)), SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, g->seen);
	sqlite3_bind_text(st, 7, g->reason, (int)strnlen(g->reason, sizeof(g->reason)),
			  SQLITE_STATIC);
	rc = store_exec(c, ST_GAP_INSERT, err, "insert gap");
	if (rc) {
		store_rollback(c);
		return rc;
	}
	return store_commit(c, err);
}

/*
 * The gaps recorded by q's (subject, peer) overlapping q's range, ordered by
 * start; a gap that final (non-provisional) coverage of q now spans whole
 * (closed since, perhaps by a query without a peer) is left out.
 */
int cache_gaps(struct cache *c, const struct cache_query *q,
	       struct cache_gap **out, size_t *n, char *err)
{
	char subject[CACHE_KEY_LEN], peer[CACHE_KEY_LEN];
	sqlite3_stmt *st = c->st[ST_GAP_SELECT];
	struct cache_ivals have = {0}, left = {0};
	struct cache_gap *v = NULL;
	struct cache_cover *cov = NULL;
	size_t cnt = 0, cap = 0, ncov = 0;
	int rc;

	*out = NULL;
	*n = 0;
	rc = cache_coverage_all(c, q, &cov, &ncov, err);
	if (rc)
		return rc;
	for (size_t i = 0; i < ncov && !rc; i++)
		if (!cov[i].provisional)
			rc = cache_ivals_add(&have, cov[i].start, cov[i].end);
	free(cov);
	if (rc) {
		rc = cache_fail(err, rc, "out of memory");
		goto out;
	}
	cache_query_keys(q, subject, peer);
	cache_bind_keys(st, subject, peer, q->start, q->end);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct cache_gap g;
		const unsigned char *t;
		memset(&g, 0, sizeof(g));
		g.start = sqlite3_column_int64(st, 0);
		g.end = sqlite3_column_int64(st, 1);
		t = sqlite3_column_text(st, 2);
		snprintf(g.peer, sizeof(g.peer), "%s", t ? (const char *)t : "");
		g.seen = sqlite3_column_int64(st, 3);
		t = sqlite3_column_text(st, 4);
		snprintf(g.reason, sizeof(g.reason), "%s", t ? (const char *)t : "");
		rc = cache_ivals_subtract(&have, g.start, g.end, &left);
		if (rc) {
			rc = cache_fail(err, rc, "out of memory");
			goto out;
		}
		if (left.n == 0)
			continue;
		if (arr_grow(&v, &cap, cnt + 1, sizeof(*v))) {
			rc = cache_fail(err, -ENOMEM, "out of memory");
			goto out;
		}
		v[cnt++] = g;
	}
	if (rc != SQLITE_DONE) {
		rc = cache_sqlite_fail(c->db, rc, err, "read gaps");
		goto out;
	}
	rc = 0;
	*out = v;
	*n = cnt;
	v = NULL;
out:
	sqlite3_reset(st);
	cache_ivals_free(&have);
	cache_ivals_free(&left);
	free(v);
	return rc;
}

/* Delete q's gaps (same subject and peer) that overlap q's range, in one
 * write transaction; SQLite errors as -errno. */
int cache_clear_gaps(struct cache *c, const struct cache_query *q, char *err)
{
	char subject[CACHE_KEY_LEN], peer[CACHE_KEY_LEN];
	sqlite3_stmt *st = c->st[ST_GAP_DELETE];
	int rc;

	rc = store_check_query(q, err);
	if (rc)
		return rc;
	cache_query_keys(q, subject, peer);
	rc = store_begin(c, err);
	if (rc)
		return rc;
	cache_bind_keys(st, subject, peer, q->start, q->end);
	rc = store_exec(c, ST_GAP_DELETE, err, "clear gaps");
	if (rc) {
		store_rollback(c);
		return rc;
	}
	return store_commit(c, err);
}

/* ---- lookup tables ------------------------------------------------------------------ */

/*
 * Replace table t by rows and stamp it, in one write transaction: readers
 * see the old table or the new one, never a mix.  Rows with the same (key,
 * key2) collapse into the last.  -EINVAL for a bad table; SQLite errors.
 */
int cache_put_lookup(struct cache *c, enum cache_table t,
		     const struct cache_lookup *rows, size_t n, int64_t fetched_ms,
		     char *err)
{
	sqlite3_stmt *st;
	int rc;

	if ((int)t < 0 || t >= CACHE_NTABLES || (n && !rows))
		return cache_fail(err, -EINVAL, "bad lookup table");
	rc = store_begin(c, err);
	if (rc)
		return rc;
	sqlite3_bind_int(c->st[ST_LOOKUP_DELETE], 1, (int)t);
	rc = store_exec(c, ST_LOOKUP_DELETE, err, "replace lookup table");
	if (rc)
		goto fail;
	st = c->st[ST_LOOKUP_INSERT];
	for (size_t i = 0; i < n; i++) {
		sqlite3_bind_int(st, 1, (int)t);
		sqlite3_bind_int64(st, 2, rows[i].key);
		sqlite3_bind_int64(st, 3, rows[i].key2);
		sqlite3_bind_text(st, 4, rows[i].name,
				  (int)strnlen(rows[i].name, sizeof(rows[i].name)), SQLITE_STATIC);
		sqlite3_bind_text(st, 5, rows[i].extra,
				  (int)strnlen(rows[i].extra, sizeof(rows[i].extra)), SQLITE_STATIC);
		rc = store_exec(c, ST_LOOKUP_INSERT, err, "insert lookup row");
		if (rc)
			goto fail;
	}
	sqlite3_clear_bindings(st);
	st = c->st[ST_AGE_SET];
	sqlite3_bind_int(st, 1, (int)t);
	sqlite3_bind_int64(st, 2, fetched_ms);
	rc = store_exec(c, ST_AGE_SET, err, "stamp lookup table");
	if (rc)
		goto fail;
	return store_commit(c, err);
fail:
	sqlite3_clear_bindings(c->st[ST_LOOKUP_INSERT]);
	store_rollback(c);
	return rc;
}

/* The stamp of cache_put_lookup, 0 for a table never stored; -EINVAL for a bad table. */
int cache_lookup_age(struct cache *c, enum cache_table t, int64_t *fetched_ms,
		     char *err)
{
	sqlite3_stmt *st = c->st[ST_AGE_GET];
	int rc;

	if ((int)t < 0 || t >= CACHE_NTABLES)
		return cache_fail(err, -EINVAL, "bad lookup table");
	*fetched_ms = 0;
	sqlite3_bind_int(st, 1, (int)t);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*fetched_ms = sqlite3_column_int64(st, 0);
		rc = 0;
	} else if (rc == SQLITE_DONE) {
		rc = 0;
	} else {
		rc = cache_sqlite_fail(c->db, rc, err, "read lookup age");
	}
	sqlite3_reset(st);
	return rc;
}
