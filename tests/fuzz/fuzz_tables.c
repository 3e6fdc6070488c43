/*
 * fuzz_tables.c - libFuzzer target: the collector's small answers, through
 * each driver's info_decode and lookup_decode.  flowapi/1: /info and the
 * lookup tables (/applications, /hostgroups, /exporters and their
 * interfaces); SNA: the tenant list (with a tenant asked for and without)
 * and the tags (host groups).  Every input is decoded as each of them, since
 * one body must never crash any.  The body is exactly the input, with no
 * NUL after it.
 *
 * Properties checked beyond "no crash":
 *   - info: a decoded answer names a product and its dialect, has its
 *     numbers in range (max_records 0 = not said, or 1 to 10^7; retention 0 = not said, or 1
 *     to 36500 days; export delay 0 to 86400 s; a clock >= 0) and every
 *     string terminated; a refused one says why in one line;
 *   - tables: every row's key (and ifIndex / parent) fits in 32 bits, its
 *     name at most CACHE_NAME_MAX bytes and its strings terminated; a
 *     refused table keeps no rows and says why;
 *   - nothing a NUL cut short is kept: every row kept from the body is kept,
 *     the same, from its twin in which each NUL of a string is a 0x01
 *     (fuzz_nul_twin), so "HTTP\u0000S" never becomes the name "HTTP".
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "fetch_i.h"

/* the driver under test (its line of the table is drivers.c's) */
extern const struct driver_ops flowapi_driver;
extern const struct driver_ops sna_driver;
#include "fuzzutil.h"

#define U32_MAX 4294967295LL

static void check_info(const struct driver_ops *ops, struct driver *d, const char *body,
		       size_t len)
{
	struct fetch_info info;
	char err[FETCH_ERRLEN] = "";
	int rc = ops->info_decode(d, body, len, &info, err);

	FUZZ_CHECK(rc == 0 || rc == -EPROTO || rc == -ENOENT || rc == -EINVAL, "%s info rc %d",
		   ops == &flowapi_driver ? "flowapi" : "sna", rc);
	if (rc) {
		fuzz_check_message(err, sizeof(err));
		return;
	}
	FUZZ_CHECK(strnlen(info.product, sizeof(info.product)) < sizeof(info.product),
		   "product not terminated");
	FUZZ_CHECK(strnlen(info.version, sizeof(info.version)) < sizeof(info.version),
		   "version not terminated");
	FUZZ_CHECK(strcmp(info.dialect, ops == &flowapi_driver ? "flowapi/1" : "sna") == 0,
		   "dialect '%.32s'", info.dialect);
	FUZZ_CHECK(info.max_records <= 10000000, "max_records %u", info.max_records);
	FUZZ_CHECK(info.retention_days >= 0 && info.retention_days <= 36500, "retention %d",
		   info.retention_days);
	FUZZ_CHECK(info.export_delay_s >= 0 && info.export_delay_s <= 86400, "export delay %d",
		   info.export_delay_s);
	FUZZ_CHECK(info.now_ms >= 0, "now %lld", (long long)info.now_ms);
}

static bool same_row(const struct cache_lookup *a, const struct cache_lookup *b)
{
	return a->key == b->key && a->key2 == b->key2 && strcmp(a->name, b->name) == 0 &&
	       strcmp(a->extra, b->extra) == 0;
}

/* The rows kept from the body (rc 0), its NUL twin keeps the same, in the
 * same order, among what it keeps. */
static void check_table_twin(const struct driver_ops *ops, struct driver *d, enum cache_table t,
			     const char *body, size_t len, const struct cache_lookup *rows,
			     size_t n)
{
	struct cache_lookup *trows = NULL;
	size_t tn = 0, j = 0;
	char err[FETCH_ERRLEN] = "";
	char *twin = fuzz_nul_twin(body, len);

	if (!twin)
		return;
	int rc = ops->lookup_decode(d, t, twin, len, &trows, &tn, err);
	if (rc != -ENOMEM) {
		FUZZ_CHECK(rc == 0, "table %d: the body decoded, its NUL twin did not: %d %s", t,
			   rc, err);
		for (size_t i = 0; i < n; i++) {
			while (j < tn && !same_row(&rows[i], &trows[j]))
				j++;
			FUZZ_CHECK(j < tn, "table %d: row %lld '%s' kept, not so in the NUL twin:"
				   " a NUL cut a string", t, (long long)rows[i].key, rows[i].name);
			j++;
		}
	}
	free(trows);
	free(twin);
}

static void check_table(const struct driver_ops *ops, struct driver *d, enum cache_table t,
			const char *body, size_t len)
{
	struct cache_lookup *rows = NULL;
	size_t n = 7;
	char err[FETCH_ERRLEN] = "";
	int rc = ops->lookup_decode(d, t, body, len, &rows, &n, err);

	FUZZ_CHECK(rc == 0 || rc == -EBADMSG || rc == -ENOMEM, "table %d rc %d", t, rc);
	if (rc) {
		FUZZ_CHECK(rows == NULL && n == 0, "a refused table kept %zu rows", n);
		if (rc == -EBADMSG)
			fuzz_check_message(err, sizeof(err));
		return;
	}
	FUZZ_CHECK(n == 0 || rows != NULL, "%zu rows and no array", n);
	for (size_t i = 0; i < n; i++) {
		const struct cache_lookup *r = &rows[i];
		FUZZ_CHECK(r->key >= 0 && r->key <= U32_MAX, "key %lld", (long long)r->key);
		FUZZ_CHECK(r->key2 >= 0 && r->key2 <= U32_MAX, "key2 %lld", (long long)r->key2);
		FUZZ_CHECK(t == CACHE_GROUPS || t == CACHE_IFS || r->key2 == 0,
			   "key2 %lld in table %d", (long long)r->key2, t);
		size_t nl = strnlen(r->name, sizeof(r->name));
		FUZZ_CHECK(nl < sizeof(r->name), "name not terminated");
		FUZZ_CHECK(nl <= CACHE_NAME_MAX, "name of %zu bytes", nl);
		FUZZ_CHECK(strnlen(r->extra, sizeof(r->extra)) <= CACHE_NAME_MAX,
			   "extra not terminated");
	}
	check_table_twin(ops, d, t, body, len, rows, n);
	free(rows);
}

/* The SNA driver decodes with its options at hand: with a tenant asked for
 * (given) or not. */
static void check_sna(const char *body, size_t len, bool given)
{
	struct fetch_opts o;
	struct driver *d;
	char err[FETCH_ERRLEN];

	memset(&o, 0, sizeof(o));
	o.url = "http://127.0.0.1:9";
	o.token = "user:password";
	o.tenant = given ? "102" : NULL;
	FUZZ_CHECK(sna_driver.open(&d, &o, err) == 0, "sna open: %s", err);
	check_info(&sna_driver, d, body, len);
	check_table(&sna_driver, d, CACHE_GROUPS, body, len);
	sna_driver.close(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *body = malloc(size ? size : 1);

	if (!body)
		return 0;
	memcpy(body, data, size);
	check_info(&flowapi_driver, NULL, body, size);
	for (int t = 0; t < CACHE_NTABLES; t++)
		check_table(&flowapi_driver, NULL, (enum cache_table)t, body, size);
	check_sna(body, size, false);
	check_sna(body, size, true);
	free(body);
	return 0;
}
