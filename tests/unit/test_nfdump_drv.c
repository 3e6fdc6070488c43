/*
 * test_nfdump_drv.c - the nfdump driver's own parts (issue 14): its
 * options (nfd_drv_config: the archive's path, files_tz, the active
 * timeout, the program, with their defaults and refusals) and the
 * conversion of a window's decoded output into the engine's answer
 * (nfd_drv_convert: foreign records counted as the engine counts them,
 * a window past its output's bound answered as full, more than the
 * window's limit thinned, samples).  The driver against real archives is
 * tests/integration/test_nfdump.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fetch.h"
#include "fetch_i.h"
#include "nfdump.h"

static char err[FETCH_ERRLEN];

/* The options, each alone, and what they refuse. */
static void test_config(void **state)
{
	struct nfd_drv_cfg c;
	(void)state;

	struct fetch_opts o = {.url = "/var/cache/nfdump/"};
	assert_int_equal(nfd_drv_config(&o, &c, err), 0);
	assert_string_equal(c.root, "/var/cache/nfdump");	/* no trailing '/' */
	assert_string_equal(c.files_tz, "");			/* the process's zone */
	assert_int_equal(c.active_ms, FETCH_ACTIVE_TIMEOUT_DEFAULT * 1000);
	assert_string_equal(c.prog, "nfdump");

	o = (struct fetch_opts){.url = "/", .files_tz = "+01:00", .active_timeout_s = 60,
				.nfdump = "/opt/nfdump/bin/nfdump"};
	assert_int_equal(nfd_drv_config(&o, &c, err), 0);
	assert_string_equal(c.root, "/");
	assert_string_equal(c.files_tz, "+01:00");
	assert_int_equal(c.active_ms, 60000);
	assert_string_equal(c.prog, "/opt/nfdump/bin/nfdump");
	o.files_tz = "UTC";
	assert_int_equal(nfd_drv_config(&o, &c, err), 0);
	/* an IANA name: only the process's zone (the fronts' tz) */
	setenv("TZ", "Europe/Berlin", 1);
	o.files_tz = "Europe/Berlin";
	assert_int_equal(nfd_drv_config(&o, &c, err), 0);
	setenv("TZ", "UTC", 1);

	/* refused, each saying why */
	o = (struct fetch_opts){.url = "var/cache/nfdump"};
	assert_int_equal(nfd_drv_config(&o, &c, err), -EINVAL);
	assert_non_null(strstr(err, "relative path"));
	assert_non_null(strstr(err, "nfdump:/var/cache/nfdump"));
	o.url = "";
	assert_int_equal(nfd_drv_config(&o, &c, err), -EINVAL);
	o.url = NULL;
	assert_int_equal(nfd_drv_config(&o, &c, err), -EINVAL);
	o.url = "//collector/var/cache/nfdump";
	assert_int_equal(nfd_drv_config(&o, &c, err), -EINVAL);
	assert_non_null(strstr(err, "nfdump+ssh://"));
	o.url = "/data/a:b";
	assert_int_equal(nfd_drv_config(&o, &c, err), -EINVAL);
	assert_non_null(strstr(err, "':'"));
	o.url = "/data";
	o.files_tz = "Mars/Olympus";
	assert_int_equal(nfd_drv_config(&o, &c, err), -EINVAL);
	assert_non_null(strstr(err, "files_tz"));
	o.files_tz = "+25:00";
	assert_int_equal(nfd_drv_config(&o, &c, err), -EINVAL);
	o.files_tz = NULL;
	o.active_timeout_s = FETCH_ACTIVE_TIMEOUT_MAX + 1;
	assert_int_equal(nfd_drv_config(&o, &c, err), -EINVAL);
	assert_non_null(strstr(err, "active_timeout"));
	o.active_timeout_s = FETCH_ACTIVE_TIMEOUT_MAX;
	assert_int_equal(nfd_drv_config(&o, &c, err), 0);
}

/* nfdump+ssh (the part after "nfdump+"): the URL, the ssh options, and
 * what is refused, each saying why. */
static void test_config_ssh(void **state)
{
	struct nfd_drv_cfg c;
	(void)state;

	struct fetch_opts o = {.url = "ssh://flows@collector:2222/var/cache/nfdump/",
			       .identity = "/home/u/.ssh/id_flows", .known_hosts = "/etc/kh",
			       .ssh_config = "/dev/null", .connect_timeout_ms = 2500,
			       .nfdump = "/opt/bin/nfdump"};
	assert_int_equal(nfd_drv_config(&o, &c, err), 0);
	assert_true(c.ssh);
	assert_string_equal(c.url.user, "flows");
	assert_string_equal(c.url.host, "collector");
	assert_int_equal(c.url.port, 2222);
	assert_string_equal(c.root, "/var/cache/nfdump");
	assert_string_equal(c.url.path, "/var/cache/nfdump");
	assert_string_equal(c.identity, "/home/u/.ssh/id_flows");
	assert_string_equal(c.known_hosts, "/etc/kh");
	assert_string_equal(c.ssh_config, "/dev/null");
	assert_int_equal(c.connect_timeout_s, 3);
	assert_string_equal(c.prog, "/opt/bin/nfdump");
	o = (struct fetch_opts){.url = "ssh://collector/nf"};
	assert_int_equal(nfd_drv_config(&o, &c, err), 0);
	assert_string_equal(c.url.user, "");
	assert_string_equal(c.prog, "nfdump");
	assert_string_equal(c.identity, "");

	/* refused */
	o.url = "ssh://collector/nf:x";
	assert_int_equal(nfd_drv_config(&o, &c, err), -EINVAL);
	assert_non_null(strstr(err, "':'"));
	o.url = "ssh://h$(x)/nf";
	assert_int_equal(nfd_drv_config(&o, &c, err), -EINVAL);
	assert_non_null(strstr(err, "not a DNS name"));
	o.url = "ssh://collector/nf";
	o.identity = "/home/u/my key";	/* ssh_config would split it */
	assert_int_equal(nfd_drv_config(&o, &c, err), -EINVAL);
	o.identity = NULL;
	o.known_hosts = "%d/kh";
	assert_int_equal(nfd_drv_config(&o, &c, err), -EINVAL);
	o = (struct fetch_opts){.url = "/var/cache/nfdump", .identity = "/k"};
	assert_int_equal(nfd_drv_config(&o, &c, err), -EINVAL);
	assert_non_null(strstr(err, "nfdump+ssh://"));
	o = (struct fetch_opts){.url = "sftp://collector/nf"};
	assert_int_equal(nfd_drv_config(&o, &c, err), -EINVAL);
	assert_non_null(strstr(err, "the one transport is ssh"));
}

/* n records starting at t0, one a second, into an nfd_out. */
static void fill(struct nfd_out *in, size_t n)
{
	memset(in, 0, sizeof(*in));
	in->recs = calloc(n ? n : 1, sizeof(*in->recs));
	assert_non_null(in->recs);
	for (size_t i = 0; i < n; i++) {
		in->recs[i].start_ms = 1795737600000LL + (int64_t)i * 1000;
		snprintf(in->recs[i].id, sizeof(in->recs[i].id), "r%zu", i);
	}
	in->n = in->cap = in->records = n;
}

/* A whole window: every record moved, the counts carried, not full. */
static void test_convert_whole(void **state)
{
	struct nfd_out in;
	struct decoded out = {.sample_at = 0};
	(void)state;

	fill(&in, 5);
	in.outside = 7;		/* other windows' records: not this answer's */
	in.foreign = 2;
	in.rejected = 1;
	snprintf(in.why, sizeof(in.why), "bad 'proto': 300");
	assert_int_equal(nfd_drv_convert(&in, 100, false, &out), 0);
	assert_null(in.recs);
	assert_int_equal(in.n, 0);
	assert_int_equal(out.n, 5);
	assert_string_equal(out.recs[4].id, "r4");
	assert_int_equal(out.foreign, 2);	/* counted by the engine as its own foreign */
	assert_int_equal(out.rejected, 1);
	assert_string_equal(out.why, "bad 'proto': 300");
	assert_int_equal(out.answered, 8);	/* kept, foreign and malformed; not outside */
	assert_false(out.sampled);
	decoded_free(&out);
	nfd_out_free(&in);
}

/* Past the output's bound: full, whatever was read, so that the planner
 * splits the window; a sample when the engine asked for one. */
static void test_convert_overflow(void **state)
{
	struct nfd_out in;
	struct decoded out = {.sample_at = 100};
	(void)state;

	fill(&in, 3);
	assert_int_equal(nfd_drv_convert(&in, 100, true, &out), 0);
	assert_int_equal(out.n, 3);
	assert_true(out.answered >= 100);
	assert_true(out.sampled);
	decoded_free(&out);
	nfd_out_free(&in);

	/* nothing read at all (cut inside the first record): still full */
	struct decoded none = {.sample_at = 0};
	fill(&in, 0);
	assert_int_equal(nfd_drv_convert(&in, 100, true, &none), 0);
	assert_int_equal(none.n, 0);
	assert_int_equal(none.answered, 100);
	assert_false(none.sampled);
	decoded_free(&none);
	nfd_out_free(&in);
}

/* More than the window's limit: at most limit kept, spread over the whole
 * output (the first and others from its end), answered all of them. */
static void test_convert_thin(void **state)
{
	struct nfd_out in;
	struct decoded out = {.sample_at = 0};
	(void)state;

	fill(&in, 1000);
	assert_int_equal(nfd_drv_convert(&in, 100, false, &out), 0);
	assert_int_equal(out.n, 100);
	assert_int_equal(out.answered, 1000);
	assert_string_equal(out.recs[0].id, "r0");
	assert_string_equal(out.recs[99].id, "r990");
	for (size_t i = 1; i < out.n; i++)
		assert_true(out.recs[i].start_ms > out.recs[i - 1].start_ms);
	decoded_free(&out);
	nfd_out_free(&in);
}

/* The output's bound follows the window's limit, as the engine's budget
 * for one answer does, and is capped. */
static void test_out_bound(void **state)
{
	(void)state;
	assert_int_equal(nfd_drv_out_bound(10000), 10000 * 2048 + (1 << 20));
	assert_int_equal(nfd_drv_out_bound(100), 100 * 2048 + (1 << 20));
	assert_int_equal(nfd_drv_out_bound(10000000), (size_t)256 << 20);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config),
		cmocka_unit_test(test_config_ssh),
		cmocka_unit_test(test_convert_whole),
		cmocka_unit_test(test_convert_overflow),
		cmocka_unit_test(test_convert_thin),
		cmocka_unit_test(test_out_bound),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
