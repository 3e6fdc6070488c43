/*
 * testutil.h - helpers the cache room's unit tests share.  Include after
 * cmocka.h.
 */
#ifndef FLOWFS_TESTUTIL_H
#define FLOWFS_TESTUTIL_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "cache.h"

#define TU_UNUSED __attribute__((unused))

/* nftw callback: remove one entry (for removing a test's directory). */
static TU_UNUSED int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static TU_UNUSED void use_tz(const char *tz)
{
	setenv("TZ", tz, 1);
	tzset();
}

/* A prefix that must parse. */
static TU_UNUSED struct cache_prefix P(const char *s)
{
	struct cache_prefix p;
	assert_int_equal(cache_prefix_parse(s, &p), 0);
	return p;
}

/* A query; peer may be NULL. */
static TU_UNUSED struct cache_query Q(const char *subject, const char *peer, int64_t start,
				      int64_t end)
{
	struct cache_query q;
	memset(&q, 0, sizeof(q));
	q.subject = P(subject);
	if (peer) {
		q.peer = P(peer);
		q.has_peer = true;
	}
	q.start = start;
	q.end = end;
	return q;
}

/* Run SQL on a second connection to the cache file (what another program,
 * an older version or an attacker with write access could have written). */
static TU_UNUSED void side_sql(struct cache *c, const char *sql)
{
	sqlite3 *db;
	assert_int_equal(sqlite3_open(cache_path(c), &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

#endif
