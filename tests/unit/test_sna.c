/*
 * test_sna.c - the SNA driver's decoder: records as the Manager's flow
 * search writes them (docs/flowsim.md, "A flow record") into the common
 * record, and hostile answers refused and counted.
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
extern const struct driver_ops sna_driver;

/* A record: the subject 10.0.1.10 is the server, the peer the client. */
#define REC(id, first, sub_orient, peer_addr)                                                     \
	"{\"id\":" id ",\"tenantId\":102,\"flowCollectorId\":2,\"protocol\":\"TCP\","             \
	"\"applicationId\":130,\"serviceId\":1443,"                                                 \
	"\"statistics\":{\"firstActiveTime\":\"" first "\","                                        \
	"\"lastActiveTime\":\"2026-11-28T10:15:09.000+0000\",\"activeDuration\":7000,"             \
	"\"byteCount\":52000,\"packetCount\":40},"                                                  \
	"\"subject\":{\"ipAddress\":\"10.0.1.10\",\"hostGroupIds\":[11,12],"                        \
	"\"portProtocol\":{\"port\":443,\"protocol\":\"TCP\"},\"orientation\":\"" sub_orient "\","  \
	"\"synPackets\":0,\"synAckPackets\":0,\"finPackets\":0,\"rstPackets\":0},"                  \
	"\"peer\":{\"ipAddress\":\"" peer_addr "\",\"hostGroupIds\":[20],"                          \
	"\"portProtocol\":{\"port\":51234,\"protocol\":\"TCP\"},\"orientation\":\"client\","        \
	"\"synPackets\":0,\"synAckPackets\":1,\"finPackets\":1,\"rstPackets\":0}}"

static int decode(const char *body, size_t sample_at, struct decoded *d)
{
	char err[FETCH_ERRLEN] = "";
	int rc = sna_decode_answer(body, strlen(body), sample_at, d, err);
	if (rc)
		assert_true(err[0] != '\0');
	return rc;
}

static void test_record_mapping(void **state)
{
	(void)state;
	struct decoded d;
	const char *body = "{\"data\":{\"flows\":[" REC("123456789012", "2026-11-28T10:15:02.000+0000",
							    "server", "198.18.7.9") "]}}";

	assert_int_equal(decode(body, 0, &d), 0);
	assert_int_equal(d.n, 1);
	const struct flow_rec *f = &d.recs[0];
	assert_string_equal(f->id, "2:123456789012");
	/* 2026-11-28T10:15:02Z */
	assert_int_equal(f->start_ms, 1795860902000LL);
	assert_int_equal(f->end_ms, 1795860909000LL);
	/* the client (the peer) is the source */
	assert_int_equal(f->src[12], 198);
	assert_int_equal(f->src[15], 9);
	assert_int_equal(f->dst[12], 10);
	assert_int_equal(f->dst[15], 10);
	assert_int_equal(f->sport, 51234);
	assert_int_equal(f->dport, 443);
	assert_int_equal(f->proto, 6);
	assert_int_equal(f->tcp_flags, 0x13);	/* FIN, SYN, ACK */
	assert_int_equal(f->bytes, 52000);
	assert_int_equal(f->pkts, 40);
	assert_int_equal(f->exporter, 2);
	assert_int_equal(f->app, 130);
	assert_int_equal(f->nsrc_groups, 1);
	assert_int_equal(f->src_groups[0], 20);
	assert_int_equal(f->ndst_groups, 2);
	assert_int_equal(f->dst_groups[1], 12);
	assert_int_equal(f->in_if, -1);
	assert_int_equal(f->src_as, -1);
	assert_int_equal(f->icmp_type, -1);
	assert_true(strncmp(f->community_id, "1:", 2) == 0);
	decoded_free(&d);
}

static void test_time_spellings(void **state)
{
	(void)state;
	struct decoded d;
	const char *bodies[] = {
		"{\"data\":{\"flows\":[" REC("1", "2026-11-28T10:15:02Z", "client", "::1") "]}}",
		"{\"data\":{\"flows\":[" REC("1", "2026-11-28T10:15:02.000+00:00", "client", "::1") "]}}",
		"{\"data\":{\"flows\":[" REC("1", "2026-11-28T11:15:02.000+0100", "client", "::1") "]}}",
		"{\"data\":{\"flows\":[" REC("1", "2026-11-28T10:15:02.5Z", "client", "::1") "]}}",
	};
	const int64_t want[] = {1795860902000LL, 1795860902000LL, 1795860902000LL, 1795860902500LL};

	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		assert_int_equal(decode(bodies[i], 0, &d), 0);
		assert_int_equal(d.n, 1);
		assert_int_equal(d.recs[0].start_ms, want[i]);
		/* the subject is the client here: it is the source */
		assert_int_equal(d.recs[0].src[15], 10);
		decoded_free(&d);
	}
}

static void test_hostile_records(void **state)
{
	(void)state;
	struct decoded d;
	const char *bad[] = {
		REC("-5", "2026-11-28T10:15:02Z", "client", "198.18.7.9"),
		REC("1.5", "2026-11-28T10:15:02Z", "client", "198.18.7.9"),
		REC("\"7\"", "2026-11-28T10:15:02Z", "client", "198.18.7.9"),
		REC("1", "2026-13-28T10:15:02Z", "client", "198.18.7.9"),
		REC("1", "2026-11-28 10:15:02", "client", "198.18.7.9"),
		REC("1", "2026-11-28T10:15:02.000+0000junk", "client", "198.18.7.9"),
		REC("1", "1969-12-31T23:59:59Z", "client", "198.18.7.9"),
		REC("1", "2026-11-28T10:15:02Z", "client", "198.18.7.999"),
		REC("1", "2026-11-28T10:15:02Z", "client", ""),
		"{\"id\":1,\"flowCollectorId\":2}",
		"[]",
		"7",
	};
	char body[4096];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(body, sizeof(body), "{\"data\":{\"flows\":[%s," REC("9", "2026-11-28T10:15:02Z",
			 "client", "198.18.7.9") "]}}", bad[i]);
		assert_int_equal(decode(body, 0, &d), 0);
		assert_int_equal(d.answered, 2);
		if (d.n != 1)
			print_message("accepted: %s\n", bad[i]);
		assert_int_equal(d.n, 1);
		assert_int_equal(d.rejected, 1);
		assert_string_equal(d.recs[0].id, "2:9");
		assert_true(d.why[0] != '\0');
		decoded_free(&d);
	}
}

static void test_sample_and_garbage(void **state)
{
	(void)state;
	struct decoded d;
	const char *two = "{\"data\":{\"flows\":[" REC("1", "2026-11-28T10:15:02Z", "client", "::1") ","
			  REC("2", "2026-11-28T10:15:03Z", "server", "::2") "]}}";
	static const char *const garbage[] = {
		"", "<html>login</html>", "{\"data\":{}}", "{\"data\":{\"flows\":{}}}",
		"{\"flows\":[]}", "{\"data\":{\"flows\":[", "null",
	};

	assert_int_equal(decode(two, 2, &d), 0);
	assert_true(d.sampled);
	assert_int_equal(d.n, 2);
	assert_int_equal(d.recs[1].start_ms, 1795860903000LL);
	decoded_free(&d);
	assert_int_equal(decode(two, 3, &d), 0);
	assert_false(d.sampled);
	decoded_free(&d);
	for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
		assert_int_equal(decode(garbage[i], 0, &d), -EBADMSG);
		decoded_free(&d);
	}
}

/* Found by fuzz_flows: applicationId 0 (no application: flowsim sends the
 * reference record's app 0 as it is) was kept as application 0, where the
 * flowapi driver keeps the same flow's app as unknown: the two dialects
 * wrote one flow two ways. */
static void test_application_zero_unknown(void **state)
{
	(void)state;
	struct decoded d;
	char body[2048];
	const char *rec = REC("7", "2026-11-28T10:15:02.000+0000", "server", "198.18.7.9");
	const char *at = strstr(rec, "\"applicationId\":130");

	assert_non_null(at);
	snprintf(body, sizeof(body), "{\"data\":{\"flows\":[%.*s\"applicationId\":0%s]}}",
		 (int)(at - rec), rec, at + strlen("\"applicationId\":130"));
	assert_int_equal(decode(body, 0, &d), 0);
	assert_int_equal(d.n, 1);
	assert_int_equal(d.recs[0].app, -1);
	decoded_free(&d);
}

/* Found by fuzz_tables: the message naming the Manager's tenants carried
 * their names as sent, a newline included, into the one-line cause that
 * goes to the log and .progress. */
static void test_tenant_list_one_line(void **state)
{
	(void)state;
	struct fetch_opts o;
	struct driver *d;
	struct fetch_info info;
	char err[FETCH_ERRLEN] = "";
	const char *body = "{\"data\":[{\"id\":102,\"displayName\":\"Lab\\nnetwork\"},"
			   "{\"id\":103,\"displayName\":\"B\\u0007\\u001b[2J\"}]}";

	memset(&o, 0, sizeof(o));
	o.url = "http://127.0.0.1:9";
	o.token = "user:password";
	assert_int_equal(sna_driver.open(&d, &o, err), 0);
	assert_int_equal(sna_driver.info_decode(d, body, strlen(body), &info, err), -EINVAL);
	assert_non_null(strstr(err, "102 (Lab?network), 103 (B??[2J)"));
	for (const char *c = err; *c; c++)
		assert_true((unsigned char)*c >= ' ' && *c != 0x7f);
	sna_driver.close(d);
}

/* A record with every field that has no column, the subject's orientation
 * and the TLS version given by the caller. */
#define REC_FULL(sub_orient, tls, big, pbig)                                                           \
	"{\"id\":77,\"flowCollectorId\":3,\"protocol\":\"TCP\",\"applicationId\":130,"              \
	"\"serviceId\":1443,\"vlanId\":" big ",\"mplsLabel\":" big ",\"tlsVersion\":" tls ","        \
	"\"statistics\":{\"firstActiveTime\":\"2026-11-28T10:15:02.000+0000\","                     \
	"\"lastActiveTime\":\"2026-11-28T10:15:09.000+0000\",\"byteCount\":52100,"                  \
	"\"packetCount\":41,\"numCombinedFlowRecords\":" big ",\"rttAverage\":12.5,"                \
	"\"srtAverage\":3,\"tcpRetransmissions\":" big "},"                                         \
	"\"subject\":{\"ipAddress\":\"10.0.1.10\",\"portProtocol\":{\"port\":443},"                 \
	"\"orientation\":" sub_orient ",\"bytes\":100,\"packets\":1,\"synPackets\":0,"              \
	"\"synAckPackets\":1,\"finPackets\":1,\"rstPackets\":0,\"natPort\":" big ","                \
	"\"trustSecId\":" big "},"                                                                  \
	"\"peer\":{\"ipAddress\":\"198.18.7.9\",\"portProtocol\":{\"port\":51234},"                 \
	"\"orientation\":\"client\",\"bytes\":52000,\"packets\":40,\"synPackets\":1,"               \
	"\"synAckPackets\":0,\"finPackets\":1,\"rstPackets\":" pbig ",\"natPort\":" pbig ","        \
	"\"trustSecId\":" pbig "}}"

/* d's first record's extra, parsed (the test fails when it is no JSON object). */
static cJSON *extra_of(const struct decoded *d)
{
	cJSON *x;

	assert_int_equal(d->n, 1);
	assert_true(strlen(d->recs[0].extra) < CACHE_EXTRA_LEN);
	x = cJSON_Parse(d->recs[0].extra);
	if (!cJSON_IsObject(x))
		print_message("extra: %s\n", d->recs[0].extra);
	assert_true(cJSON_IsObject(x));
	return x;
}

static double num_at(const cJSON *x, const char *side, const char *key)
{
	const cJSON *o = side ? cJSON_GetObjectItemCaseSensitive(x, side) : x;
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	if (!cJSON_IsNumber(v))
		print_message("no number %s.%s\n", side ? side : "", key);
	assert_true(cJSON_IsNumber(v));
	return v->valuedouble;
}

static bool has(const cJSON *x, const char *side, const char *key)
{
	const cJSON *o = side ? cJSON_GetObjectItemCaseSensitive(x, side) : x;
	return cJSON_GetObjectItemCaseSensitive(o, key) != NULL;
}

/* The fields without a column land in extra, as JSON that parses, with the
 * collector's values; -1 and absent fields are left out; the client side
 * is the source, whichever side the subject was. */
static void test_extra_fields(void **state)
{
	(void)state;
	struct decoded d;
	cJSON *x;

	assert_int_equal(decode("{\"data\":{\"flows\":[" REC_FULL("\"server\"", "\"TLS 1.2\"", "7", "-1")
				"]}}", 0, &d), 0);
	x = extra_of(&d);
	assert_true(num_at(x, NULL, "serviceId") == 1443);
	assert_true(num_at(x, NULL, "vlanId") == 7);
	assert_true(num_at(x, NULL, "mplsLabel") == 7);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(x, "tlsVersion")->valuestring,
			    "TLS 1.2");
	assert_true(num_at(x, NULL, "combined") == 7);
	assert_true(num_at(x, NULL, "rtt") == 12.5);
	assert_true(num_at(x, NULL, "srt") == 3);
	assert_true(num_at(x, NULL, "retransmissions") == 7);
	/* the peer is the client (the source of flows.csv) */
	assert_true(num_at(x, "client", "bytes") == 52000);
	assert_true(num_at(x, "client", "packets") == 40);
	assert_true(num_at(x, "client", "syn") == 1);
	assert_true(num_at(x, "client", "synAck") == 0);
	assert_true(num_at(x, "client", "fin") == 1);
	assert_false(has(x, "client", "rst"));		/* -1 */
	assert_false(has(x, "client", "natPort"));
	assert_false(has(x, "client", "trustSecId"));
	assert_false(has(x, "client", "orientation"));	/* the key says it */
	assert_true(num_at(x, "server", "bytes") == 100);
	assert_true(num_at(x, "server", "packets") == 1);
	assert_true(num_at(x, "server", "synAck") == 1);
	assert_true(num_at(x, "server", "rst") == 0);
	assert_true(num_at(x, "server", "natPort") == 7);
	assert_true(num_at(x, "server", "trustSecId") == 7);
	assert_false(has(x, "server", "orientation"));
	assert_false(has(x, NULL, "byteCount"));	/* columns are not repeated */
	assert_int_equal(d.recs[0].src[12], 198);
	cJSON_Delete(x);
	decoded_free(&d);

	/* nothing beyond the columns: "" (stored as NULL) */
	assert_int_equal(decode("{\"data\":{\"flows\":[{\"id\":1,\"flowCollectorId\":2,"
				"\"statistics\":{\"firstActiveTime\":\"2026-11-28T10:15:02Z\","
				"\"rttAverage\":-1},\"subject\":{\"ipAddress\":\"10.0.1.10\"},"
				"\"peer\":{\"ipAddress\":\"10.0.1.11\",\"bytes\":-1},"
				"\"serviceId\":-1,\"vlanId\":null,\"tlsVersion\":7}]}}", 0, &d), 0);
	assert_int_equal(d.n, 1);
	assert_string_equal(d.recs[0].extra, "");
	decoded_free(&d);
}

/* A collector's strings are escaped (quotes, backslashes, control
 * characters, bytes that are not ASCII), never passed raw into the JSON;
 * an orientation that is neither client nor server is kept on its side. */
static void test_extra_hostile_strings(void **state)
{
	(void)state;
	struct decoded d;
	cJSON *x;

	assert_int_equal(decode("{\"data\":{\"flows\":[" REC_FULL("\"up\\\"}\\n\"",
				"\"T\\\"L\\\\S\\u0001\\n\\u007f\\u00e9\\\",\\\"x\\\":{\"", "7", "-1")
				"]}}", 0, &d), 0);
	x = extra_of(&d);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(x, "tlsVersion")->valuestring,
			    "T\"L\\S\x01\n\x7f??\",\"x\":{");
	assert_false(has(x, NULL, "x"));
	/* the subject, without client or server, is taken as the client */
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(
				    cJSON_GetObjectItemCaseSensitive(x, "client"), "orientation")
				    ->valuestring, "up\"}\n");
	assert_true(num_at(x, "client", "bytes") == 100);
	assert_true(num_at(x, "server", "bytes") == 52000);
	cJSON_Delete(x);
	decoded_free(&d);

	/* a TLS version too long to keep whole is left out, not cut */
	char body[4096], tls[300];
	memset(tls, 'v', sizeof(tls) - 1);
	tls[sizeof(tls) - 1] = '\0';
	snprintf(body, sizeof(body), "{\"data\":{\"flows\":[" REC_FULL("\"client\"", "\"%s\"", "7", "-1")
		 "]}}", tls);
	assert_int_equal(decode(body, 0, &d), 0);
	x = extra_of(&d);
	assert_false(has(x, NULL, "tlsVersion"));
	assert_true(num_at(x, NULL, "serviceId") == 1443);
	cJSON_Delete(x);
	decoded_free(&d);
}

/* Counters as large as a record may hold (2^53) do not fit all together:
 * the text stays one whole JSON object, and the most useful members (the
 * sides' bytes and packets, the service) are the ones kept. */
static void test_extra_never_cut(void **state)
{
	(void)state;
	static const char *const kept[][2] = {
		{"client", "bytes"}, {"client", "packets"}, {"server", "bytes"}, {"server", "packets"},
		{NULL, "serviceId"}, {NULL, "tlsVersion"}, {"client", "syn"}, {"client", "synAck"},
		{"client", "fin"}, {"client", "rst"}, {"server", "syn"}, {"server", "rst"},
		{NULL, "rtt"}, {NULL, "srt"}, {NULL, "retransmissions"},
	};
	static const char *const last[][2] = {
		{NULL, "vlanId"}, {NULL, "mplsLabel"}, {NULL, "combined"}, {"client", "natPort"},
		{"client", "trustSecId"}, {"server", "natPort"}, {"server", "trustSecId"},
	};
	struct decoded d;
	size_t dropped = 0;
	cJSON *x;

	assert_int_equal(decode("{\"data\":{\"flows\":[" REC_FULL("\"server\"",
				"\"TLS 1.3 (a name as long as a collector may write)\"",
				"9007199254740992", "9007199254740991") "]}}", 0, &d), 0);
	x = extra_of(&d);
	assert_true(num_at(x, "client", "bytes") == 52000);
	assert_true(num_at(x, "server", "bytes") == 100);
	for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
		if (!has(x, kept[i][0], kept[i][1]))
			print_message("dropped %s\n", kept[i][1]);
		assert_true(has(x, kept[i][0], kept[i][1]));
	}
	/* something had to give: only the least useful members */
	for (size_t i = 0; i < sizeof(last) / sizeof(last[0]); i++)
		dropped += !has(x, last[i][0], last[i][1]);
	assert_true(dropped > 0);
	cJSON_Delete(x);
	decoded_free(&d);
}

/* "NONE" (what SNA answers for a flow without TLS) is no value: not in
 * extra; a real version is. */
static void test_extra_no_value(void **state)
{
	(void)state;
	const char *fmt = "{\"data\":{\"flows\":[" REC_FULL("\"server\"", "%s", "-1", "-1") "]}}";
	char body[4096], err[FETCH_ERRLEN];
	struct decoded d;

	snprintf(body, sizeof(body), fmt, "\"NONE\"");
	assert_int_equal(sna_decode_answer(body, strlen(body), 0, &d, err), 0);
	cJSON *x = extra_of(&d);
	assert_false(has(x, NULL, "tlsVersion"));
	cJSON_Delete(x);
	decoded_free(&d);
	snprintf(body, sizeof(body), fmt, "\"TLS 1.3\"");
	assert_int_equal(sna_decode_answer(body, strlen(body), 0, &d, err), 0);
	x = extra_of(&d);
	assert_true(has(x, NULL, "tlsVersion"));
	cJSON_Delete(x);
	decoded_free(&d);
}

/* With includeInterfaceData, sides carry "interfaces" (the shape of a
 * recorded answer, docs/sna.md): the INBOUND interface is inIf,
 * the OUTBOUND one outIf, the client's side first. */
static void test_interfaces(void **state)
{
	(void)state;
	const char *body =
		"{\"data\":{\"flows\":[{\"id\":79600,\"flowCollectorId\":121,\"protocol\":\"TCP\","
		"\"statistics\":{\"firstActiveTime\":\"2020-07-16T12:08:47.000+0000\","
		"\"lastActiveTime\":\"2020-07-16T12:09:47.000+0000\",\"byteCount\":28878,"
		"\"packetCount\":326},"
		"\"subject\":{\"ipAddress\":\"10.10.20.50\",\"orientation\":\"server\","
		"\"portProtocol\":{\"port\":443},\"hostGroupIds\":[61627],\"interfaces\":["
		"{\"exporterIpAddress\":\"172.16.16.100\",\"interfaceId\":10201,"
		"\"interfaceDescription\":\"172.16.16.100 (ifIndex-10201)\",\"dscpValue\":-1,"
		"\"direction\":\"OUTBOUND\",\"exporterType\":\"exporter\"}]},"
		"\"peer\":{\"ipAddress\":\"198.18.7.9\",\"orientation\":\"client\","
		"\"portProtocol\":{\"port\":51234},\"hostGroupIds\":[65534],\"interfaces\":["
		"{\"exporterIpAddress\":\"172.16.16.100\",\"interfaceId\":10101,"
		"\"interfaceDescription\":\"172.16.16.100 (ifIndex-10101)\",\"dscpValue\":0,"
		"\"minTtl\":64,\"maxTtl\":64,\"direction\":\"INBOUND\",\"exporterType\":\"exporter\"}]}}"
		"]}}";
	struct decoded d;

	assert_int_equal(decode(body, 0, &d), 0);
	assert_int_equal(d.n, 1);
	assert_int_equal(d.recs[0].in_if, 10101);
	assert_int_equal(d.recs[0].out_if, 10201);
	decoded_free(&d);
}

static struct driver *open_driver(void)
{
	struct fetch_opts o;
	struct driver *d;
	char err[FETCH_ERRLEN] = "";

	memset(&o, 0, sizeof(o));
	o.url = "http://127.0.0.1:9";
	o.token = "user:password";
	o.tenant = "102";
	assert_int_equal(sna_driver.open(&d, &o, err), 0);
	return d;
}

/* Tag names, in the shape of each endpoint's answer: the tags endpoint's
 * items carry "name", internalHosts/tags' carry "displayName". */
static void test_tag_names(void **state)
{
	(void)state;
	static const char *const bodies[] = {
		"{\"data\":[{\"id\":3,\"name\":\"Tokyo DC\",\"location\":\"INSIDE\","
		"\"description\":\"\",\"domainId\":102,\"parentId\":1}]}",
		"{\"data\":[{\"id\":3,\"displayName\":\"Tokyo DC\",\"parentId\":1}]}",
	};
	struct driver *d = open_driver();
	char err[FETCH_ERRLEN];

	for (size_t i = 0; i < 2; i++) {
		struct cache_lookup *rows;
		size_t n;
		assert_int_equal(sna_driver.lookup_decode(d, CACHE_GROUPS, bodies[i], strlen(bodies[i]),
							  &rows, &n, err), 0);
		assert_int_equal(n, 1);
		assert_int_equal(rows[0].key, 3);
		assert_string_equal(rows[0].name, "Tokyo DC");
		free(rows);
	}
	sna_driver.close(d);
}

/*
 * A NUL in a string of a record (cJSON ends the string there): two records
 * whose peer addresses differ only after a "\u0000" were both kept as
 * 198.18.7.9.  Both are rejected and counted now; so is a NUL in a
 * protocol or a time.  Before: kept.
 */
static void test_nul_in_strings(void **state)
{
	(void)state;
	struct decoded d;
	const char *body = "{\"data\":{\"flows\":["
		REC("1", "2026-11-28T10:15:02Z", "client", "198.18.7.9\\u0000a") ","
		REC("2", "2026-11-28T10:15:02Z", "client", "198.18.7.9\\u0000b") ","
		REC("3", "2026-11-28T10:15:02Z\\u0000x", "client", "198.18.7.9") ","
		REC("4", "2026-11-28T10:15:02Z", "server\\u0000", "198.18.7.9") ","
		REC("9", "2026-11-28T10:15:02Z", "client", "198.18.7.9") "]}}";

	for (size_t sample_at = 0; sample_at <= 1; sample_at++) {
		assert_int_equal(decode(body, sample_at, &d), 0);
		assert_int_equal(d.answered, 5);
		assert_int_equal(d.rejected, 4);
		assert_int_equal(d.n, 1);
		assert_non_null(strstr(d.why, "NUL"));
		if (!sample_at)
			assert_string_equal(d.recs[0].id, "2:9");
		decoded_free(&d);
	}
	/* the array's keys cut short are not data.flows */
	assert_int_equal(decode("{\"data\":{\"flows\\u0000\":[]}}", 0, &d), -EBADMSG);
	assert_int_equal(decode("{\"data\\u0000\":{\"flows\":[]}}", 0, &d), -EBADMSG);
}

/* A poll's answer with this id and status (JSON text) to window_next, the
 * search started at started_ms (monotonic): its rc, the next request in *a. */
static int poll_answer(struct driver *d, const char *id, const char *status, int64_t started_ms,
		       struct http_ask *a, char *err)
{
	char body[256];
	struct driver_win w;
	struct http_resp r;
	struct decoded out;

	memset(&w, 0, sizeof(w));
	memset(&r, 0, sizeof(r));
	memset(&out, 0, sizeof(out));
	w.stage = 1;	/* polling */
	snprintf(w.id, sizeof(w.id), "abc123");
	w.started_ms = started_ms;
	snprintf(body, sizeof(body), "{\"data\":{\"query\":{\"id\":\"%s\",\"status\":\"%s\"}}}",
		 id, status);
	r.status = 200;
	r.body = body;
	r.len = strlen(body);
	return sna_driver.window_next(d, &r, &w, a, &out, err);
}

/* A status that names no failure is still running (polled again); one
 * that does is asked again; COMPLETED reads the results. */
static void test_search_statuses(void **state)
{
	(void)state;
	static const struct {
		const char *status;
		int rc;
	} cases[] = {{"IN_PROGRESS", 1}, {"PENDING", 1}, {"QUEUED", 1}, {"RUNNING", 1},
		     {"COMPLETED", 1}, {"FAILED", -EAGAIN}, {"CANCELED", -EAGAIN},
		     {"CANCELLED", -EAGAIN}, {"ERROR", -EAGAIN}, {"TIMEOUT", -EAGAIN}};
	struct driver *d = open_driver();

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char err[FETCH_ERRLEN] = "";
		struct http_ask a;
		/* the deadline is far */
		int rc = poll_answer(d, "abc123", cases[i].status, 1LL << 62, &a, err);
		if (rc != cases[i].rc)
			fail_msg("status %s: %d, want %d (%s)", cases[i].status, rc, cases[i].rc, err);
		if (rc == 1)
			assert_non_null(strstr(a.url, strcmp(cases[i].status, "COMPLETED") == 0
							 ? "/abc123/results" : "/abc123"));
	}
	sna_driver.close(d);
}

/* A status carries the Manager's text into the cause (the log, .progress,
 * stderr): its control characters are made visible, whether the search
 * failed or is still running at the deadline.  Before: kept raw. */
static void test_search_status_escaped(void **state)
{
	(void)state;
	static const struct {
		const char *status;
		int64_t started_ms;
		int rc;
		const char *want;
	} cases[] = {
		{"FAILED\\n\\u001b[2J", 1LL << 62, -EAGAIN, "ended with status FAILED\\n\\x1b[2J"},
		{"RUN\\u001b]0;x\\u0007\\r", -(1LL << 62), -ETIMEDOUT,
		 "was still RUN\\x1b]0;x\\x07\\r after"},
	};
	struct driver *d = open_driver();

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char err[FETCH_ERRLEN] = "";
		struct http_ask a;
		assert_int_equal(poll_answer(d, "abc123", cases[i].status, cases[i].started_ms, &a, err),
				 cases[i].rc);
		if (!strstr(err, cases[i].want))
			fail_msg("case %zu: '%s', want '%s' in it", i, err, cases[i].want);
		for (const char *c = err; *c; c++)
			assert_true((unsigned char)*c >= ' ' && *c != 0x7f);
	}
	sna_driver.close(d);
}

/* A tag whose name a NUL cuts is skipped, like a tag without a name; a
 * search's id or status cut by one is not an answer. */
static void test_nul_in_tags_and_searches(void **state)
{
	(void)state;
	const char *tags = "{\"data\":[{\"id\":3,\"name\":\"Tokyo\\u0000DC\"},"
			   "{\"id\":4,\"name\":\"Osaka\"}]}";
	struct driver *d = open_driver();
	struct cache_lookup *rows;
	char err[FETCH_ERRLEN];
	size_t n;

	assert_int_equal(sna_driver.lookup_decode(d, CACHE_GROUPS, tags, strlen(tags), &rows, &n,
						  err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(rows[0].key, 4);
	free(rows);
	/* the deadline is far */
	struct http_ask a;
	assert_int_equal(poll_answer(d, "abc123", "COMPLETED\\u0000FAILED", 1LL << 62, &a, err),
			 -EBADMSG);
	assert_int_equal(poll_answer(d, "abc\\u0000123", "COMPLETED", 1LL << 62, &a, err),
			 -EBADMSG);
	assert_int_equal(poll_answer(d, "abc123", "COMPLETED", 1LL << 62, &a, err), 1);
	sna_driver.close(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_record_mapping),
		cmocka_unit_test(test_time_spellings),
		cmocka_unit_test(test_hostile_records),
		cmocka_unit_test(test_sample_and_garbage),
		cmocka_unit_test(test_tenant_list_one_line),
		cmocka_unit_test(test_application_zero_unknown),
		cmocka_unit_test(test_extra_fields),
		cmocka_unit_test(test_extra_hostile_strings),
		cmocka_unit_test(test_extra_never_cut),
		cmocka_unit_test(test_extra_no_value),
		cmocka_unit_test(test_tag_names),
		cmocka_unit_test(test_interfaces),
		cmocka_unit_test(test_search_statuses),
		cmocka_unit_test(test_search_status_escaped),
		cmocka_unit_test(test_nul_in_strings),
		cmocka_unit_test(test_nul_in_tags_and_searches),
	};
	fetch_json_init_hooks();
	int rc = cmocka_run_group_tests_name("sna", tests, NULL, NULL);
	fetch_community_done();
	return rc;
}
