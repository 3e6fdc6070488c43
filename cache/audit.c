/*
 * audit.c - what the store proves about a query's range: is every part of
 * [start, end) covered by a stored window, or a recorded gap?
 *
 * This is the check behind every "complete" flowfs and flowfetch print
 * (issue 10).  It reads only the store: the coverage rows written with
 * each window's records in one transaction, and the gap rows.  It shares
 * nothing with the planner, which decides what to ask and believed once
 * that it was done when it was not; nor with cache_missing's interval
 * arithmetic (cache_ivals): the holes are found by one sweep of its own
 * over the rows in start order.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "arr.h"
#include "cache_i.h"

/* One row of the sweep: a usable coverage row, or a recorded gap. */
struct audit_row {
	int64_t start, end;
	bool gap;
};

static int audit_row_cmp(const void *a, const void *b)
{
	const struct audit_row *x = a, *y = b;

	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return (x->end > y->end) - (x->end < y->end);
}

/* Append [s, e) to a->holes, which the sweep fills in order: no merge is
 * ever needed, so the ivals helpers are not used.  -ENOMEM. */
static int audit_hole(struct cache_audit *a, int64_t s, int64_t e)
{
	if (arr_grow(&a->holes.v, &a->holes.cap, a->holes.n + 1, sizeof(*a->holes.v)))
		return -ENOMEM;
	a->holes.v[a->holes.n++] = (struct cache_ival){s, e};
	return 0;
}

/* Read q's recorded gaps (its subject and peer) into rows after the n
 * already there.  0, -ENOMEM or an SQLite error. */
static int audit_gap_rows(struct cache *c, const struct cache_query *q, struct audit_row **rows,
			  size_t *n, size_t *cap, char *err)
{
	char subject[CACHE_KEY_LEN], peer[CACHE_KEY_LEN];
	sqlite3_stmt *st = c->st[ST_GAP_SELECT];
	int rc;

	cache_query_keys(q, subject, peer);
	cache_bind_keys(st, subject, peer, q->start, q->end);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (arr_grow(rows, cap, *n + 1, sizeof(**rows))) {
			sqlite3_reset(st);
			return cache_fail(err, -ENOMEM, "out of memory");
		}
		(*rows)[(*n)++] = (struct audit_row){sqlite3_column_int64(st, 0),
						     sqlite3_column_int64(st, 1), true};
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return cache_sqlite_fail(c->db, rc, err, "read gaps");
	return 0;
}

/*
 * The sweep.  rows sorted by start; cur is the first instant not yet
 * accounted for, ccur the same for coverage alone.  A gap row counts as
 * reported when some part of it lies outside coverage: those are the gaps
 * a user is told about.
 */
static int audit_sweep(const struct cache_query *q, const struct audit_row *rows, size_t n,
		       struct cache_audit *a)
{
	int64_t cur = q->start, ccur = q->start;
	int rc = 0;

	for (size_t i = 0; i < n && !rc; i++) {
		int64_t s = rows[i].start > q->start ? rows[i].start : q->start;
		int64_t e = rows[i].end < q->end ? rows[i].end : q->end;
		if (s >= e)
			continue;
		if (s > cur)
			rc = audit_hole(a, cur, s);
		if (e > cur)
			cur = e;
		if (!rows[i].gap && e > ccur) {
			a->covered_ms += e - (s > ccur ? s : ccur);
			ccur = e;
		}
	}
	if (!rc && cur < q->end)
		rc = audit_hole(a, cur, q->end);
	for (size_t i = 0; i < n; i++) {
		if (!rows[i].gap)
			continue;
		int64_t s = rows[i].start > q->start ? rows[i].start : q->start;
		int64_t e = rows[i].end < q->end ? rows[i].end : q->end;
		int64_t reach = s;
		/* sorted by start: once a row starts past reach, none after
		 * it can extend it */
		for (size_t k = 0; k < n && reach < e && rows[k].start <= reach; k++)
			if (!rows[k].gap && rows[k].end > reach)
				reach = rows[k].end;
		if (s < e && reach < e) {
			a->ngaps++;
			a->gap_ms += e - s;
		}
	}
	return rc;
}

int cache_audit(struct cache *c, const struct cache_query *q, int64_t now_ms,
		int64_t live_ttl_ms, struct cache_audit *out, char *err)
{
	struct cache_cover *cov = NULL;
	struct audit_row *rows = NULL;
	size_t ncov = 0, n = 0, cap = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!q || q->start > q->end)
		return cache_fail(err, -EINVAL, "bad query range");
	/* one read transaction: coverage and gaps of the same moment */
	rc = sqlite3_step(c->st[ST_BEGIN_READ]);
	sqlite3_reset(c->st[ST_BEGIN_READ]);
	if (rc != SQLITE_DONE)
		return cache_sqlite_fail(c->db, rc, err, "begin");
	rc = cache_coverage(c, q, now_ms, live_ttl_ms, &cov, &ncov, err);
	if (rc)
		goto out;
	cap = ncov + 16;
	rows = malloc(cap * sizeof(*rows));
	if (!rows) {
		rc = cache_fail(err, -ENOMEM, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < ncov; i++)
		rows[n++] = (struct audit_row){cov[i].start, cov[i].end, false};
	rc = audit_gap_rows(c, q, &rows, &n, &cap, err);
	if (rc)
		goto out;
	qsort(rows, n, sizeof(*rows), audit_row_cmp);
	rc = audit_sweep(q, rows, n, out);
	if (rc)
		rc = cache_fail(err, rc, "out of memory");
out:
	if (!sqlite3_get_autocommit(c->db)) {
		sqlite3_step(c->st[ST_COMMIT]);
		sqlite3_reset(c->st[ST_COMMIT]);
	}
	free(cov);
	free(rows);
	if (rc)
		cache_audit_free(out);
	return rc;
}

void cache_audit_free(struct cache_audit *a)
{
	free(a->holes.v);
	memset(a, 0, sizeof(*a));
}
