/*
 * test_nfdump_drv.c - the nfdump driver's own parts (issue 14): its
 * options (nfd_drv_config: the archive's path, files_tz, the active
 * timeout, the program, with their defaults and refusals) and the
 * conversion of a window's decoded output into the engine's answer
 * (nfd_drv_convert: foreign records counted as the engine counts them,
 * a window past its output's bound answered as full, more than the
 * window's limit thinned, samples); a window through the driver's ops over
 * a made-up archive and a scripted "nfdump", refused when a file past its
 * bound holds one of its flows (late_probe).  The driver against real
 * archives is tests/integration/test_nfdump.py.
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
#include <sys/stat.h>
#include <time.h>

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

/* ---- the window's check of "complete" (late_probe) ----------------------- */

extern const struct driver_ops nfdump_driver;

#define T0 1795737600000LL	/* 2026-11-27T00:00:00Z */

/* A record of 10.0.1.10 as nfdump -o json prints it, from an exporter
 * (sysid 1), with its first, last and received times (UTC). */
static void rec_text(char *buf, size_t len, int sysid, const char *first, const char *last,
		     const char *received)
{
	snprintf(buf, len,
		 "{\n\t\"type\" : \"FLOW\",\n\t\"sampled\" : 0,\n\t\"export_sysid\" : %d,\n"
		 "\t\"first\" : \"%s\",\n\t\"last\" : \"%s\",\n\t\"received\" : \"%s\",\n"
		 "\t\"in_packets\" : 5,\n\t\"in_bytes\" : 500,\n\t\"proto\" : 6,\n"
		 "\t\"tcp_flags\" : \"...AP...\",\n\t\"src_port\" : 1234,\n\t\"dst_port\" : 80,\n"
		 "\t\"src4_addr\" : \"10.0.1.10\",\n\t\"dst4_addr\" : \"192.0.2.1\",\n"
		 "\t\"label\" : \"<none>\"\n}\n", sysid, first, last, received);
}

/* What lies past the window's bound in late_window's archive. */
enum late {
	LATE_NONE,	/* no later file */
	LATE_EXPORTER,	/* 03:00: a flow of the window an exporter stored 9000 s late */
	LATE_PCAPD,	/* 03:00: a flow of the window, no lateness known (nfpcapd's
			 * sysid 0), and 03:05 without */
	LATE_ALWAYS,	/* LATE_PCAPD, and 03:05 holds one too (the last file) */
};

/*
 * An archive of five-minute files from 2026-11-26T23:55 to 2026-11-27T01:05
 * (the window [00:00, 01:00) and the 600 s the driver reads past it), and
 * the later files 'late' says; and an "nfdump" (a shell script) that
 * prints, for a run that names the 03:00 file, a flow that started at
 * 00:20 and was stored at 03:00 (by an exporter, or by nfpcapd), for the
 * 03:05 file nothing (or, LATE_ALWAYS, a flow of 00:25), and for any other
 * run a flow of 00:10 stored at 00:15.  The window is then asked through
 * the driver's ops, as the engine asks it.
 */
static int late_window(enum late late, struct decoded *out, char *why)
{
	char dir[] = "/tmp/test_nfdump_drv.XXXXXX", path[256], prog[256];
	char a[2048], b[2048], c[2048];
	struct driver *d = NULL;
	atomic_int cancel = 0;
	int rc;

	assert_non_null(mkdtemp(dir));
	for (int m = -5; m <= 65; m += 5) {
		int64_t t = T0 / 1000 + m * 60;
		struct tm tm;
		time_t tt = (time_t)t;
		gmtime_r(&tt, &tm);
		snprintf(path, sizeof(path), "%s/nfcapd.%04d%02d%02d%02d%02d", dir, tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min);
		FILE *f = fopen(path, "w");
		assert_non_null(f);
		fclose(f);
	}
	for (int k = 0; k < 2 && late != LATE_NONE; k++) {
		snprintf(path, sizeof(path), "%s/nfcapd.20261127030%d", dir, k * 5);
		FILE *f = fopen(path, "w");
		assert_non_null(f);
		fclose(f);
	}
	rec_text(a, sizeof(a), 1, "2026-11-27T00:10:00.000", "2026-11-27T00:11:00.000",
		 "2026-11-27T00:15:00.000");
	rec_text(b, sizeof(b), late == LATE_EXPORTER ? 1 : 0, "2026-11-27T00:20:00.000",
		 "2026-11-27T00:30:00.000", "2026-11-27T03:00:00.000");
	if (late == LATE_ALWAYS)
		rec_text(c, sizeof(c), 0, "2026-11-27T00:25:00.000", "2026-11-27T00:26:00.000",
			 "2026-11-27T03:05:00.000");
	else
		snprintf(c, sizeof(c), "No matching flows\n");
	snprintf(prog, sizeof(prog), "%s.nfdump", dir);
	FILE *f = fopen(prog, "w");
	assert_non_null(f);
	fprintf(f, "#!/bin/sh\ncase \"$*\" in\n*202611270300*) cat <<'EOF'\n%sEOF\n;;\n"
		   "*202611270305*) cat <<'EOF'\n%sEOF\n;;\n"
		   "*) cat <<'EOF'\n%sEOF\n;;\nesac\n", b, c, a);
	fclose(f);
	assert_int_equal(chmod(prog, 0700), 0);

	struct fetch_opts o = {.url = dir, .files_tz = "UTC", .nfdump = prog};
	rc = nfdump_driver.open(&d, &o, why);
	if (rc == 0) {
		struct cache_query q;
		struct plan_req r = {.id = 1, .start = T0, .end = T0 + 3600000};
		memset(&q, 0, sizeof(q));
		assert_int_equal(cache_prefix_parse("10.0.1.10", &q.subject), 0);
		q.start = r.start;
		q.end = r.end;
		rc = nfdump_driver.window_run(d, &q, &r, 10000, &cancel, nfd_mono_ms() + 30000,
					      out, why);
		nfdump_driver.close(d);
	}
	/* the files, the script, the folder */
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", dir, prog);
	assert_int_equal(system(cmd), 0);
	return rc;
}

/* No later file: the window stands, its one flow kept.  A later file that
 * holds a flow of the window, stored (an exporter says) later than the
 * bound: the window is refused (-ERANGE, not asked again), naming the
 * lateness and the option to raise, so nothing says "complete" without
 * it.  The same file from a collector that says nothing of its lateness
 * (nfpcapd): its flow is the window's, and the window stands once the next
 * file holds none; when every later file holds one, it is refused. */
static void test_window_late(void **state)
{
	struct decoded out;
	(void)state;

	memset(&out, 0, sizeof(out));
	assert_int_equal(late_window(LATE_NONE, &out, err), 0);
	assert_int_equal(out.n, 1);
	assert_int_equal(out.recs[0].start_ms, T0 + 600000);
	decoded_free(&out);

	memset(&out, 0, sizeof(out));
	assert_int_equal(late_window(LATE_EXPORTER, &out, err), -ERANGE);
	assert_non_null(strstr(err, "9000 s after they ended"));
	assert_non_null(strstr(err, "active_timeout"));
	decoded_free(&out);

	memset(&out, 0, sizeof(out));
	assert_int_equal(late_window(LATE_PCAPD, &out, err), 0);
	assert_int_equal(out.n, 2);
	assert_int_equal(out.recs[0].start_ms, T0 + 600000);
	assert_int_equal(out.recs[1].start_ms, T0 + 1200000);
	assert_int_equal(out.answered, 2);
	decoded_free(&out);

	memset(&out, 0, sizeof(out));
	assert_int_equal(late_window(LATE_ALWAYS, &out, err), -ERANGE);
	assert_non_null(strstr(err, "nfcapd.202611270305"));
	decoded_free(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config),
		cmocka_unit_test(test_config_ssh),
		cmocka_unit_test(test_convert_whole),
		cmocka_unit_test(test_convert_overflow),
		cmocka_unit_test(test_convert_thin),
		cmocka_unit_test(test_window_late),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
