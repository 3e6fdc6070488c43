/*
 * test_pg.c - the shared cache's claim arithmetic (cache_pg_claim_sets in
 * cache/pg.c), without a server: which rows are done, mine or others',
 * clipped to the range, and what is free to claim.  The transaction
 * around it is tested against a real PostgreSQL in
 * tests/integration/test_pg.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "cache_i.h"
#include "pg.h"

#define ME 7

/* s equals the n intervals of want (pairs). */
static void assert_ivals(const struct cache_ivals *s, const int64_t *want, size_t n)
{
	assert_int_equal(s->n, n);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(s->v[i].start, want[2 * i]);
		assert_int_equal(s->v[i].end, want[2 * i + 1]);
	}
}

static void test_nothing_claimed_is_all_free(void **state)
{
	struct cache_pg_claim cl;
	struct cache_ivals fr = {0};

	(void)state;
	assert_int_equal(cache_pg_claim_sets(NULL, 0, ME, 100, 200, &cl, &fr), 0);
	assert_ivals(&cl.mine, NULL, 0);
	assert_ivals(&cl.others, NULL, 0);
	assert_ivals(&cl.done, NULL, 0);
	assert_ivals(&fr, (int64_t[]){100, 200}, 1);
	cache_pg_claim_free(&cl);
	cache_ivals_free(&fr);
}

/* Rows reaching past the range are clipped; the holes between them are
 * free; a done row counts as done whoever finished it. */
static void test_rows_sorted_and_clipped(void **state)
{
	const struct cache_pg_row rows[] = {
		{0, 100, true, 0},
		{100, 200, false, ME},
		{250, 300, false, 9},
		{300, 320, true, ME},
		{380, 500, false, 9},
	};
	struct cache_pg_claim cl;
	struct cache_ivals fr = {0};

	(void)state;
	assert_int_equal(cache_pg_claim_sets(rows, 5, ME, 50, 400, &cl, &fr), 0);
	assert_ivals(&cl.done, (int64_t[]){50, 100, 300, 320}, 2);
	assert_ivals(&cl.mine, (int64_t[]){100, 200}, 1);
	assert_ivals(&cl.others, (int64_t[]){250, 300, 380, 400}, 2);
	assert_ivals(&fr, (int64_t[]){200, 250, 320, 380}, 2);
	cache_pg_claim_free(&cl);
	cache_ivals_free(&fr);
}

/* Adjacent claims of mine read as one span; a row outside the range adds
 * nothing; a range wholly held leaves nothing free. */
static void test_adjacent_merge_and_nothing_free(void **state)
{
	const struct cache_pg_row rows[] = {
		{0, 10, false, ME},
		{10, 20, false, ME},
		{20, 30, false, 9},
		{40, 50, false, 9},
	};
	struct cache_pg_claim cl;
	struct cache_ivals fr = {0};

	(void)state;
	assert_int_equal(cache_pg_claim_sets(rows, 4, ME, 0, 30, &cl, &fr), 0);
	assert_ivals(&cl.mine, (int64_t[]){0, 20}, 1);
	assert_ivals(&cl.others, (int64_t[]){20, 30}, 1);
	assert_ivals(&fr, NULL, 0);
	cache_pg_claim_free(&cl);
	cache_ivals_free(&fr);
}

/* The target shown in messages never carries a password, in either form. */
static void test_target_redacted(void **state)
{
	char buf[256];

	(void)state;
	cache_pg_target("host=/run/pg port=5433 dbname=flows user=ann password=s3cret "
			"sslmode=require", buf, sizeof(buf));
	assert_string_equal(buf, "host=/run/pg port=5433 dbname=flows user=ann sslmode=require");
	cache_pg_target("postgresql://ann:s3cret@db.example:5432/flows?sslpassword=k3y", buf,
			sizeof(buf));
	assert_string_equal(buf, "host=db.example port=5432 dbname=flows user=ann");
	cache_pg_target("service=team", buf, sizeof(buf));
	assert_string_equal(buf, "service=team");
	cache_pg_target("host='unclosed", buf, sizeof(buf));
	assert_string_equal(buf, "(unparsable connection string)");
	cache_pg_target("host=averyveryverylonghostname", buf, 12);
	assert_int_equal(strlen(buf), 11);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nothing_claimed_is_all_free),
		cmocka_unit_test(test_rows_sorted_and_clipped),
		cmocka_unit_test(test_adjacent_merge_and_nothing_free),
		cmocka_unit_test(test_target_redacted),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
