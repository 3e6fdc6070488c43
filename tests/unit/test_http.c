/*
 * test_http.c - the engine's HTTP client against a one-connection server on
 * 127.0.0.1:0: an answer that is already in the socket when http_wait is
 * called comes back at once, not after the wait's timeout; and http_judge's
 * causes, which carry the server's message with its control characters
 * made visible.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fetch_i.h"

struct server {
	int fd;
	unsigned port;
	atomic_int asked, answered, finished;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void nap_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* Accept one connection, read one request, wait 100 ms, answer {}. */
static void *serve_one(void *arg)
{
	static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
				     "Content-Length: 2\r\n\r\n{}";
	struct server *s = arg;
	char buf[4096];
	size_t got = 0;
	int c = accept(s->fd, NULL, NULL);

	if (c < 0)
		return NULL;
	while (got < sizeof(buf) - 1) {
		ssize_t n = read(c, buf + got, sizeof(buf) - 1 - got);
		if (n <= 0)
			break;
		got += (size_t)n;
		buf[got] = '\0';
		if (strstr(buf, "\r\n\r\n"))
			break;
	}
	atomic_store(&s->asked, 1);
	nap_ms(100);
	if (write(c, answer, sizeof(answer) - 1) == (ssize_t)sizeof(answer) - 1)
		atomic_store(&s->answered, 1);
	while (!atomic_load(&s->finished))	/* open, as a kept-alive one is */
		nap_ms(5);
	close(c);
	return NULL;
}

static void test_answer_already_there(void **state)
{
	(void)state;
	struct server s = {.fd = socket(AF_INET, SOCK_STREAM, 0)};
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof(a);
	pthread_t th;
	struct http_opts o = {.max_inflight = 1, .connect_timeout_ms = 5000, .stall_s = 10,
			      .request_timeout_ms = 20000, .max_body = 1 << 20};
	struct http *h = NULL;
	struct http_ask ask = {0};
	struct http_resp *done = NULL;
	size_t n = 0;
	char err[FETCH_ERRLEN];

	assert_true(s.fd >= 0);
	assert_int_equal(bind(s.fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(s.fd, 1), 0);
	assert_int_equal(getsockname(s.fd, (struct sockaddr *)&a, &al), 0);
	s.port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&th, NULL, serve_one, &s), 0);

	assert_int_equal(http_new(&o, &h, err), 0);
	snprintf(ask.url, sizeof(ask.url), "http://127.0.0.1:%u/x", s.port);
	assert_int_equal(http_submit(h, &ask, 7), 0);
	/* send the request; the answer comes 100 ms after the server read it */
	for (double t0 = now_s(); !atomic_load(&s.asked) && now_s() - t0 < 5;) {
		assert_int_equal(http_wait(h, 0, &done, &n), 0);
		assert_int_equal(n, 0);
		free(done);
		nap_ms(5);
	}
	assert_true(atomic_load(&s.asked));
	while (!atomic_load(&s.answered))
		nap_ms(5);
	nap_ms(50);		/* the answer is in our socket now */

	double t0 = now_s();
	assert_int_equal(http_wait(h, 6000, &done, &n), 0);
	double took = now_s() - t0;
	assert_int_equal(n, 1);
	assert_int_equal(done[0].tag, 7);
	assert_int_equal(done[0].status, 200);
	assert_string_equal(done[0].body, "{}");
	/* it waited out the 6 s timeout before: the poll saw no transfer */
	if (took > 3.0)
		fail_msg("an answer already there took %.2f s to come back", took);
	http_resp_free(&done[0]);
	free(done);
	http_free(h);
	atomic_store(&s.finished, 1);
	pthread_join(th, NULL);
	close(s.fd);
}

/* The server's message goes into the cause (the log, .progress, flowfetch's
 * stderr) with its control characters visible: a collector's "\n\x1b[2J"
 * would forge a log line and clear the reader's terminal.  Before: kept
 * raw. */
static void test_judge_message(void **state)
{
	(void)state;
	static const struct {
		const char *driver;
		long status;
		const char *body, *want;
		bool exact;
	} cases[] = {
		{"flowapi", 500, "{\"error\":\"boom\\n\\u001b[2J\"}", "HTTP 500: boom\\n\\x1b[2J", false},
		{"flowapi", 400, "{\"error\":\"bad\nrequest\x1b[31m\"}",
		 "rejected the request: HTTP 400: bad\\nrequest\\x1b[31m", false},
		{"sna", 403, "{\"errors\":[{\"message\":\"no\\r\\nSet-Cookie: x\\u009b1m\"}]}",
		 "(HTTP 403: no\\r\\nSet-Cookie: x\\xc2\\x9b1m)", false},
		{"flowapi", 404, "{\"error\":\"plain text, \\\"quoted\\\"\"}",
		 "HTTP 404: plain text, \"quoted\" (", false},
		/* each driver reads its own dialect's format (issue 14) */
		{"sna", 400, "{\"errors\":[{\"code\":\"BAD\",\"message\":\"no field x\"}]}",
		 "HTTP 400: no field x", false},
		{"sna", 400, "{\"error\":\"not the Manager's form\"}",
		 "the collector rejected the request: HTTP 400", true},
		{"flowapi", 500, "{\"errors\":[{\"message\":\"not flowapi's\"}]}", "HTTP 500", true},
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct fetch_driver *d = fetch_driver_find(cases[i].driver);
		struct http_opts ho = {.max_inflight = 1, .max_body = 1 << 20};
		struct http *h = NULL;
		struct http_resp r;
		char why[FETCH_ERRLEN] = "", herr[FETCH_ERRLEN];
		int errnum = 0;

		assert_non_null(d);
		ho.ops = d->ops;
		assert_int_equal(http_new(&ho, &h, herr), 0);
		memset(&r, 0, sizeof(r));
		r.status = cases[i].status;
		r.body = (char *)cases[i].body;
		r.len = strlen(cases[i].body);
		r.retry_after_s = -1;
		assert_int_not_equal(http_judge(h, &r, &errnum, why, sizeof(why)), HTTP_OK);
		/* exact: a body in another format says nothing, the status
		 * stands alone */
		if (cases[i].exact ? strcmp(why, cases[i].want) != 0 : !strstr(why, cases[i].want))
			fail_msg("case %zu: '%s', want '%s'", i, why, cases[i].want);
		for (const char *c = why; *c; c++)
			assert_true((unsigned char)*c >= ' ' && *c != 0x7f);
		http_free(h);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_answer_already_there),
		cmocka_unit_test(test_judge_message),
	};
	curl_global_init(CURL_GLOBAL_DEFAULT);
	int rc = cmocka_run_group_tests_name("http", tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
