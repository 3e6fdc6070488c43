/*
 * test_decode.c - the flowapi/1 decoder against hostile answers (a NUL in a
 * string among them), its lookup tables' names, and Community ID against
 * published vectors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fetch_i.h"

/* the driver under test (its line of the table is drivers.c's) */
extern const struct driver_ops flowapi_driver;

#define GOOD "\"id\":\"ab12\",\"start\":1700000000123,\"end\":1700000001123," \
	     "\"src\":\"10.0.0.1\",\"dst\":\"192.0.2.7\",\"sport\":40000,\"dport\":443,\"proto\":6"

/* Decode one record given as the inside of a JSON object. */
static int decode_one(const char *members, struct flow_rec *f, char *why)
{
	char text[2048];
	cJSON *o;
	int rc;

	snprintf(text, sizeof(text), "{%s}", members);
	o = cJSON_Parse(text);
	assert_non_null(o);
	memset(f, 0x5a, sizeof(*f));
	rc = flowapi_decode_record(o, f, why, 160);
	cJSON_Delete(o);
	return rc;
}

static void test_good_record(void **state)
{
	(void)state;
	struct flow_rec f;
	char why[160];

	assert_int_equal(decode_one(GOOD ",\"pkts\":3,\"bytes\":180,\"tcp_flags\":27,"
				    "\"src_groups\":[1,2],\"app\":0,\"in_if\":0,\"x_vendor\":{\"a\":[1]}",
				    &f, why), 0);
	assert_string_equal(f.id, "ab12");
	assert_int_equal(f.start_ms, 1700000000123LL);
	assert_int_equal(f.end_ms, 1700000001123LL);
	assert_int_equal(f.src[10], 0xff);
	assert_int_equal(f.src[12], 10);
	assert_int_equal(f.sport, 40000);
	assert_int_equal(f.tcp_flags, 27);
	assert_int_equal(f.icmp_type, -1);
	assert_int_equal(f.pkts, 3);
	assert_int_equal(f.nsrc_groups, 2);
	assert_int_equal(f.ndst_groups, 0);
	assert_int_equal(f.app, -1);	/* 0 means unknown */
	assert_int_equal(f.in_if, -1);
	assert_int_equal(f.src_as, -1);	/* missing */
	assert_string_equal(f.extra, "");	/* nothing beyond the columns */
	assert_int_equal(f.sampling, -1);
	assert_true(strncmp(f.community_id, "1:", 2) == 0);
}

static void test_ipv6_spellings(void **state)
{
	(void)state;
	struct flow_rec a, b;
	char why[160];

	assert_int_equal(decode_one("\"id\":\"1\",\"start\":1,\"src\":\"2001:db8:10::5\",\"dst\":\"2001:db8::1\"",
				    &a, why), 0);
	assert_int_equal(decode_one("\"id\":\"1\",\"start\":1,\"src\":\"2001:0DB8:0010:0000:0000:0000:0000:0005\","
				    "\"dst\":\"2001:db8:0:0:0:0:0:1\"", &b, why), 0);
	assert_memory_equal(a.src, b.src, 16);
	assert_memory_equal(a.dst, b.dst, 16);
	assert_int_equal(a.end_ms, 1);	/* end defaults to start */
}

static void test_hostile_records(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"\"start\":1,\"src\":\"10.0.0.1\",\"dst\":\"10.0.0.2\"",			/* no id */
		"\"id\":\"\",\"start\":1,\"src\":\"10.0.0.1\",\"dst\":\"10.0.0.2\"",		/* empty id */
		"\"id\":7,\"start\":1,\"src\":\"10.0.0.1\",\"dst\":\"10.0.0.2\"",		/* id not a string */
		"\"id\":\"a,b\",\"start\":1,\"src\":\"10.0.0.1\",\"dst\":\"10.0.0.2\"",	/* comma in id */
		"\"id\":\"a\\nb\",\"start\":1,\"src\":\"10.0.0.1\",\"dst\":\"10.0.0.2\"",	/* control char */
		"\"id\":\"00000000000000000000000000000000000000000000000000000000000000000\","
		"\"start\":1,\"src\":\"10.0.0.1\",\"dst\":\"10.0.0.2\"",			/* 65 chars */
		"\"id\":\"a\",\"src\":\"10.0.0.1\",\"dst\":\"10.0.0.2\"",			/* no start */
		"\"id\":\"a\",\"start\":\"1\",\"src\":\"10.0.0.1\",\"dst\":\"10.0.0.2\"",	/* start a string */
		"\"id\":\"a\",\"start\":-1,\"src\":\"10.0.0.1\",\"dst\":\"10.0.0.2\"",	/* negative */
		"\"id\":\"a\",\"start\":1.5,\"src\":\"10.0.0.1\",\"dst\":\"10.0.0.2\"",	/* fraction */
		"\"id\":\"a\",\"start\":1e300,\"src\":\"10.0.0.1\",\"dst\":\"10.0.0.2\"",	/* huge */
		"\"id\":\"a\",\"start\":10,\"end\":9,\"src\":\"10.0.0.1\",\"dst\":\"10.0.0.2\"", /* end < start */
		"\"id\":\"a\",\"start\":1,\"dst\":\"10.0.0.2\"",				/* no src */
		"\"id\":\"a\",\"start\":1,\"src\":\"10.0.0.256\",\"dst\":\"10.0.0.2\"",	/* bad address */
		"\"id\":\"a\",\"start\":1,\"src\":\"10.0.0.1/24\",\"dst\":\"10.0.0.2\"",	/* a prefix */
		"\"id\":\"a\",\"start\":1,\"src\":[],\"dst\":\"10.0.0.2\"",			/* wrong type */
		"\"id\":\"a\",\"start\":1,\"src\":\"10.0.0.1\",\"dst\":\"10.0.0.2\",\"sport\":65536",
		"\"id\":\"a\",\"start\":1,\"src\":\"10.0.0.1\",\"dst\":\"10.0.0.2\",\"proto\":256",
		"\"id\":\"a\",\"start\":1,\"src\":\"10.0.0.1\",\"dst\":\"10.0.0.2\",\"bytes\":\"many\"",
		"\"id\":\"a\",\"start\":1,\"src\":\"10.0.0.1\",\"dst\":\"10.0.0.2\",\"bytes\":9007199254740993e3",
		"\"id\":\"a\",\"start\":1,\"src\":\"10.0.0.1\",\"dst\":\"10.0.0.2\",\"sampling\":0",
		"\"id\":\"a\",\"start\":1,\"src\":\"10.0.0.1\",\"dst\":\"10.0.0.2\",\"src_groups\":[1,\"x\"]",
		"\"id\":\"a\",\"start\":1,\"src\":\"10.0.0.1\",\"dst\":\"10.0.0.2\",\"src_groups\":3",
		"\"id\":\"a\",\"start\":1,\"src\":\"10.0.0.1\",\"dst\":\"10.0.0.2\","
		"\"dst_groups\":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17]",		/* too many */
	};
	struct flow_rec f;
	char why[160];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = '\0';
		if (decode_one(bad[i], &f, why) != -EINVAL)
			fail_msg("accepted hostile record %zu: {%s}", i, bad[i]);
		assert_true(why[0] != '\0');
	}
}

static void test_answer_counts_rejects(void **state)
{
	(void)state;
	struct decoded d;
	char err[FETCH_ERRLEN];
	const char *body = "{\"flows\":[{" GOOD "},{\"id\":\"x\"},{" GOOD "},7],\"extra\":true}";

	assert_int_equal(flowapi_decode_flows(body, strlen(body), 0, &d, err), 0);
	assert_int_equal(d.answered, 4);
	assert_int_equal(d.n, 2);
	assert_int_equal(d.rejected, 2);
	assert_true(d.why[0] != '\0');
	decoded_free(&d);
}

/* A full answer of a window that will be split is decoded as a sample:
 * starts and addresses only, checked as strictly; a shorter one whole. */
static void test_sample_answers(void **state)
{
	(void)state;
	struct decoded d;
	char err[FETCH_ERRLEN];
	const char *body = "{\"flows\":[{" GOOD "},{\"id\":\"x\",\"start\":5,\"src\":\"10.0.0.1\","
			   "\"dst\":\"::1\"},{\"start\":-1,\"src\":\"1.2.3.4\",\"dst\":\"1.2.3.4\"}]}";

	assert_int_equal(flowapi_decode_flows(body, strlen(body), 3, &d, err), 0);
	assert_true(d.sampled);
	assert_int_equal(d.answered, 3);
	assert_int_equal(d.n, 2);
	assert_int_equal(d.rejected, 1);
	assert_int_equal(d.recs[0].start_ms, 1700000000123LL);
	assert_int_equal(d.recs[1].start_ms, 5);
	assert_int_equal(d.recs[1].src[15], 1);
	assert_int_equal(d.recs[1].src[10], 0xff);
	assert_int_equal(d.recs[1].dst[15], 1);
	assert_int_equal(d.recs[1].dst[10], 0);
	decoded_free(&d);

	/* under the threshold: whole records, the one without an end or
	 * ports still valid, the bad start still rejected */
	assert_int_equal(flowapi_decode_flows(body, strlen(body), 4, &d, err), 0);
	assert_false(d.sampled);
	assert_int_equal(d.answered, 3);
	assert_int_equal(d.rejected, 1);
	assert_string_equal(d.recs[0].id, "ab12");
	assert_true(d.recs[0].community_id[0] != '\0');
	decoded_free(&d);
}

static void test_garbage_answers(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"", "<html><body>Login</body></html>", "{\"flows\":[{\"id\":\"a\",\"sta",
		"{\"flows\":{}}", "{\"error\":\"x\"}", "[1,2,3]", "null", "\x01\x02\xff",
	};
	struct decoded d;
	char err[FETCH_ERRLEN];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(flowapi_decode_flows(bad[i], strlen(bad[i]), 0, &d, err), -EBADMSG);
		assert_true(err[0] != '\0');
		for (const char *c = err; *c; c++)
			assert_true((unsigned char)*c >= ' ');	/* a one-line message */
		decoded_free(&d);
	}
}

/* Found by fuzz_flows: the message about a short non-JSON answer quoted
 * up to 20 bytes whatever its length, reading past the end of a body that
 * does not end in a NUL (ASan: heap-buffer-overflow in printf). */
static void test_garbage_quote_stays_in_body(void **state)
{
	(void)state;
	struct decoded d;
	char err[FETCH_ERRLEN];
	char *body = malloc(24);

	assert_non_null(body);
	memcpy(body, "nopeSECRETSECRETSECRET!", 24);	/* only "nope" is the answer */
	assert_int_equal(flowapi_decode_flows(body, 4, 0, &d, err), -EBADMSG);
	assert_non_null(strstr(err, "'nope'"));
	assert_null(strstr(err, "SECRET"));
	decoded_free(&d);
	char *empty = malloc(1);	/* nothing at all, not even a NUL */
	assert_non_null(empty);
	assert_int_equal(flowapi_decode_flows(empty, 0, 0, &d, err), -EBADMSG);
	assert_non_null(strstr(err, "(0 bytes, starting '')"));
	free(empty);
	free(body);
}

/* A record whose strings are this id, src and dst (JSON text). */
#define NREC(id, src, dst) "{\"id\":\"" id "\",\"start\":5,\"src\":\"" src "\",\"dst\":\"" dst "\"}"

/*
 * cJSON keeps strings as C strings: a "\u0000" ends one early, so two ids
 * that differ only after it were read as one ("dup"), and an address with
 * anything after a NUL passed as the address.  Every record that holds a
 * string a NUL cuts (an escape, or a raw NUL byte, which cJSON copies as it
 * is; in a value or in a key) is rejected and counted, whole or as a
 * sample; an escaped backslash before "u0000" is no NUL.  Before: all kept.
 */
static void test_nul_in_strings(void **state)
{
	(void)state;
	static const char body[] =
		"{\"flows\":[" NREC("dup\\u0000a", "10.0.0.1", "10.0.0.2") ","
		NREC("dup\\u0000b", "10.0.0.1", "10.0.0.2") ","
		NREC("ok1", "10.0.0.1\\u0000junk", "10.0.0.2") ","
		NREC("ok2", "10.0.0.1", "10.0.0.2\0junk") ","
		"{\"src\\u0000x\":\"10.9.9.9\",\"id\":\"ok3\",\"start\":5,\"src\":\"10.0.0.1\","
		"\"dst\":\"10.0.0.2\"},"
		NREC("ok4\\\\u0000", "10.0.0.1", "10.0.0.2") ","
		"{" GOOD ",\"x_vendor\":[\"\\u0000\"]}," NREC("ok5", "10.0.0.1", "10.0.0.2") "]}";
	struct decoded d;
	char err[FETCH_ERRLEN];

	for (size_t sample_at = 0; sample_at <= 1; sample_at++) {
		assert_int_equal(flowapi_decode_flows(body, sizeof(body) - 1, sample_at, &d, err), 0);
		assert_int_equal(d.sampled, sample_at == 1);
		assert_int_equal(d.answered, 8);
		assert_int_equal(d.rejected, 6);
		assert_int_equal(d.n, 2);
		assert_non_null(strstr(d.why, "NUL"));
		if (!sample_at) {
			assert_string_equal(d.recs[0].id, "ok4\\u0000");	/* a backslash, then text */
			assert_string_equal(d.recs[1].id, "ok5");
		}
		decoded_free(&d);
	}
	/* a "flows" key cut short is not the collector's "flows" */
	static const char cut_key[] = "{\"flows\\u0000x\":[" NREC("a", "10.0.0.1", "10.0.0.2") "],"
				      "\"flows\":[]}";
	assert_int_equal(flowapi_decode_flows(cut_key, sizeof(cut_key) - 1, 0, &d, err), -EBADMSG);
	assert_non_null(strstr(err, "NUL"));
	decoded_free(&d);
}

/* Lookup names: a row whose name is longer than CACHE_NAME_MAX bytes, or
 * holds a string a NUL cuts, is skipped (its id shows as the number); a
 * name of CACHE_NAME_MAX bytes is kept whole.  Before: the NUL-cut name
 * was kept cut ("HTTP"). */
static void test_lookup_names(void **state)
{
	(void)state;
	char body[1024], n127[CACHE_NAME_MAX + 1], err[FETCH_ERRLEN];
	struct cache_lookup *rows;
	size_t n;

	memset(n127, 'x', CACHE_NAME_MAX);
	n127[CACHE_NAME_MAX] = '\0';
	snprintf(body, sizeof(body), "{\"applications\":[{\"id\":1,\"name\":\"HTTP\\u0000S\"},"
		 "{\"id\":2,\"name\":\"%sy\"},{\"id\":3,\"name\":\"%s\"},"
		 "{\"id\":4,\"name\":\"DNS\",\"note\":\"a\\u0000\"},{\"id\":5,\"name\":\"NTP\"}]}",
		 n127, n127);
	assert_int_equal(flowapi_driver.lookup_decode(NULL, CACHE_APPS, body, strlen(body), &rows,
						      &n, err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(rows[0].key, 3);
	assert_string_equal(rows[0].name, n127);
	assert_int_equal(rows[1].key, 5);
	assert_string_equal(rows[1].name, "NTP");
	free(rows);
}

static void set_addr4(uint8_t a[16], unsigned b0, unsigned b1, unsigned b2, unsigned b3)
{
	memset(a, 0, 16);
	a[10] = a[11] = 0xff;
	a[12] = (uint8_t)b0;
	a[13] = (uint8_t)b1;
	a[14] = (uint8_t)b2;
	a[15] = (uint8_t)b3;
}

/* Vectors published with Zeek's community-id tests (seed 0). */
static void test_community_id(void **state)
{
	(void)state;
	struct flow_rec f;
	char id[32], rev[32];

	memset(&f, 0, sizeof(f));
	set_addr4(f.src, 1, 2, 3, 4);
	set_addr4(f.dst, 5, 6, 7, 8);
	f.sport = 1122;
	f.dport = 3344;
	f.proto = 6;
	f.icmp_type = f.icmp_code = -1;
	fetch_community_id(&f, 0, id);
	assert_string_equal(id, "1:wCb3OG7yAFWelaUydu0D+125CLM=");
	f.proto = 17;
	fetch_community_id(&f, 0, id);
	assert_string_equal(id, "1:0Mu9InQx6z4ZiCZM/7HXi2WMhOg=");
	/* both directions of a flow share the ID */
	struct flow_rec g = f;
	memcpy(g.src, f.dst, 16);
	memcpy(g.dst, f.src, 16);
	g.sport = f.dport;
	g.dport = f.sport;
	fetch_community_id(&g, 0, rev);
	assert_string_equal(id, rev);
	/* an echo request and its reply share the ID too */
	f.proto = 1;
	f.sport = f.dport = -1;
	f.icmp_type = 8;
	f.icmp_code = 0;
	fetch_community_id(&f, 0, id);
	g = f;
	memcpy(g.src, f.dst, 16);
	memcpy(g.dst, f.src, 16);
	g.icmp_type = 0;
	fetch_community_id(&g, 0, rev);
	assert_string_equal(id, rev);
	f.proto = -1;
	fetch_community_id(&f, 0, id);
	assert_string_equal(id, "");
}

/* A record function that counts its calls (and keeps nothing). */
static size_t calls;
static int count_one(const cJSON *o, struct flow_rec *f, bool sample, char *why, size_t len)
{
	(void)o;
	(void)sample;
	(void)why;
	(void)len;
	memset(f, 0, sizeof(*f));
	calls++;
	return 0;
}

/*
 * Issue 12: an answer of more records than the cap asked for is refused
 * before anything is allocated for its records (a hostile "[0,0,0,...]"
 * of 2 bytes an item would have made the decoder allocate 300 times its
 * size), with a cause that names the cap; exactly the cap is decoded.
 */
static void test_decode_array_limit(void **state)
{
	(void)state;
	enum { ITEMS = 1000000, CAP = 10000 };
	char *text = malloc(2 * ITEMS + 16), *p = text;
	struct decoded d;
	cJSON *arr;

	assert_non_null(text);
	*p++ = '[';
	for (int i = 0; i < ITEMS; i++) {
		*p++ = '0';
		*p++ = i + 1 < ITEMS ? ',' : ']';
	}
	*p = '\0';
	arr = cJSON_Parse(text);
	free(text);
	assert_non_null(arr);

	/* over the cap: refused whole, nothing allocated, nothing decoded */
	memset(&d, 0, sizeof(d));
	d.limit = CAP;
	calls = 0;
	assert_int_equal(fetch_decode_array(arr, NULL, &d, count_one), -EBADMSG);
	assert_null(d.recs);
	assert_int_equal(calls, 0);
	assert_int_equal(d.n, 0);
	assert_int_equal(d.answered, ITEMS);
	assert_non_null(strstr(d.why, "1000000 records"));
	assert_non_null(strstr(d.why, "10000 asked for"));
	assert_non_null(strstr(d.why, "max_records"));
	decoded_free(&d);

	/* no limit (0): decoded as before */
	memset(&d, 0, sizeof(d));
	calls = 0;
	assert_int_equal(fetch_decode_array(arr, NULL, &d, count_one), 0);
	assert_int_equal(calls, ITEMS);
	decoded_free(&d);
	cJSON_Delete(arr);

	/* exactly the cap is an answer like any other; one more is not */
	arr = cJSON_CreateArray();
	assert_non_null(arr);
	for (int i = 0; i < 100; i++)
		cJSON_AddItemToArray(arr, cJSON_CreateObject());
	memset(&d, 0, sizeof(d));
	d.limit = 100;
	assert_int_equal(fetch_decode_array(arr, NULL, &d, count_one), 0);
	assert_int_equal(d.n, 100);
	decoded_free(&d);
	memset(&d, 0, sizeof(d));
	d.limit = 99;
	assert_int_equal(fetch_decode_array(arr, NULL, &d, count_one), -EBADMSG);
	assert_null(d.recs);
	decoded_free(&d);
	cJSON_Delete(arr);
}

/* Both dialects' answers, through the decoders the engine calls: the
 * limit refuses an answer over it with the cause in err. */
static void test_decoders_refuse_over_cap(void **state)
{
	(void)state;
	static const struct {
		int (*fn)(const char *, size_t, size_t, size_t, struct decoded *, char *);
		const char *body;
	} answers[] = {
		{flowapi_decode_capped, "{\"flows\":[{" GOOD "},{" GOOD "},{" GOOD "}]}"},
		{sna_decode_capped, "{\"data\":{\"flows\":[{},{},{}]}}"},
	};
	struct decoded d;
	char err[FETCH_ERRLEN];

	for (size_t i = 0; i < sizeof(answers) / sizeof(answers[0]); i++) {
		const char *body = answers[i].body;
		err[0] = '\0';
		assert_int_equal(answers[i].fn(body, strlen(body), 0, 2, &d, err), -EBADMSG);
		assert_null(d.recs);
		assert_non_null(strstr(err, "an answer of 3 records, more than the 2 asked for"));
		decoded_free(&d);
		assert_int_equal(answers[i].fn(body, strlen(body), 0, 3, &d, err), 0);
		assert_int_equal(d.answered, 3);
		decoded_free(&d);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_record),
		cmocka_unit_test(test_ipv6_spellings),
		cmocka_unit_test(test_hostile_records),
		cmocka_unit_test(test_answer_counts_rejects),
		cmocka_unit_test(test_sample_answers),
		cmocka_unit_test(test_garbage_answers),
		cmocka_unit_test(test_garbage_quote_stays_in_body),
		cmocka_unit_test(test_nul_in_strings),
		cmocka_unit_test(test_lookup_names),
		cmocka_unit_test(test_decode_array_limit),
		cmocka_unit_test(test_decoders_refuse_over_cap),
		cmocka_unit_test(test_community_id),
	};
	fetch_json_init_hooks();
	return cmocka_run_group_tests_name("decode", tests, NULL, NULL);
}
