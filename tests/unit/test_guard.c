/*
 * test_guard.c - the fronts' guards (fetch/guard.c, issue 12, items 3 and
 * 4): which token files are private, which URLs hold credentials, and
 * which hosts a token may reach over plain http:// without a warning.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fetch.h"

static void test_url_credentials(void **state)
{
	(void)state;
	static const char *const refused[] = {
		"https://user:s3cr3t@collector.example", "http://s3cr3t@127.0.0.1:8080/",
		"sna+https://s3cr3t@smc.example", "sna+http://u:s3cr3t@[::1]:443/api",
		"https://s3cr3t.example@evil.example/", "https://:@h",
	};
	static const char *const taken[] = {
		"https://collector.example", "http://127.0.0.1:8080/a@b",
		"https://h/?q=a@b", "https://h#x@y", "sna+https://[2001:db8::1]:8443",
	};
	char err[FETCH_ERRLEN];

	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		err[0] = '\0';
		if (fetch_url_check(refused[i], "--token-file", err) != -EINVAL)
			fail_msg("%s was taken", refused[i]);
		assert_non_null(strstr(err, "--token-file"));
		assert_null(strstr(err, "s3cr3t"));	/* the URL is never shown */
	}
	for (size_t i = 0; i < sizeof(taken) / sizeof(taken[0]); i++)
		if (fetch_url_check(taken[i], "--token-file", err) != 0)
			fail_msg("%s was refused: %s", taken[i], err);
}

/* The warning as the fronts ask for it: the URL through the table of
 * drivers (a prefix named, the rest given to the driver), and the
 * driver's secret named. */
static bool front_warning(const char *url, char *msg, size_t len, const char **secret)
{
	const struct fetch_driver *d;
	const char *bare;
	char err[FETCH_ERRLEN];

	if (fetch_driver_resolve(url, NULL, &d, &bare, err))
		fail_msg("%s: %s", url, err);
	*secret = d->secret;
	return fetch_clear_text_warning(bare, d->secret, msg, len);
}

static void test_clear_text_warning(void **state)
{
	(void)state;
	static const char *const quiet[] = {
		"http://127.0.0.1:8080", "http://127.255.0.9/", "http://[::1]:80/x",
		"http://[::ffff:127.0.0.1]:80", "http://localhost:8080", "http://LOCALHOST.",
		"sna+http://127.0.0.1", "https://collector.example", "sna+https://10.0.0.1",
	};
	static const char *const warned[] = {
		"http://collector.example", "http://10.1.2.3:8080/", "http://127.evil.example",
		"http://localhost.evil.example", "http://[2001:db8::1]:80", "sna+http://smc.example",
		"http://0.0.0.0:80", "http://128.0.0.1", "http://[::2]",
	};
	char msg[FETCH_ERRLEN], want[128];
	const char *secret;

	for (size_t i = 0; i < sizeof(quiet) / sizeof(quiet[0]); i++)
		if (front_warning(quiet[i], msg, sizeof(msg), &secret))
			fail_msg("%s: warned: %s", quiet[i], msg);
	for (size_t i = 0; i < sizeof(warned) / sizeof(warned[0]); i++) {
		msg[0] = '\0';
		if (!front_warning(warned[i], msg, sizeof(msg), &secret))
			fail_msg("%s: no warning", warned[i]);
		snprintf(want, sizeof(want), "%s is sent over plain http://", secret);
		assert_non_null(strstr(msg, want));
	}
	assert_true(front_warning("sna+http://smc.example:8080/x", msg, sizeof(msg), &secret));
	assert_string_equal(msg, "the SNA password is sent over plain http:// to "
			    "smc.example:8080, which is not this machine: anyone on the way "
			    "can read it (use https://)");
	assert_true(front_warning("http://c.example", msg, sizeof(msg), &secret));
	assert_non_null(strstr(msg, "the token is sent over plain http:// to c.example"));
}

/* One function reads which driver a URL and the driver option name, for
 * both fronts and the engine (issue 14): a prefix names its driver and is
 * taken off, the option names one, the first line is the default; an
 * unknown name lists the table's names. */
static void test_driver_resolve(void **state)
{
	(void)state;
	const struct fetch_driver *d;
	const char *bare;
	char err[FETCH_ERRLEN], help[512];

	assert_int_equal(fetch_driver_resolve("https://c.example", NULL, &d, &bare, err), 0);
	assert_string_equal(d->name, "flowapi");
	assert_string_equal(bare, "https://c.example");
	assert_true(d->caps & FETCH_DRIVER_HTTP);
	assert_false(d->caps & FETCH_DRIVER_SESSIONS);
	assert_int_equal(fetch_driver_resolve("sna+https://m.example/", NULL, &d, &bare, err), 0);
	assert_string_equal(d->name, "sna");
	assert_string_equal(bare, "https://m.example/");
	assert_true(d->caps & FETCH_DRIVER_SESSIONS);
	assert_int_equal(fetch_driver_resolve("http://127.0.0.1:1", "sna", &d, &bare, err), 0);
	assert_string_equal(d->name, "sna");
	assert_string_equal(bare, "http://127.0.0.1:1");
	assert_int_equal(fetch_driver_resolve("sna+https://m", "sna", &d, &bare, err), 0);

	assert_int_equal(fetch_driver_resolve("sna+https://m", "flowapi", &d, &bare, err), -EINVAL);
	assert_string_equal(err, "the URL says sna, the driver option says flowapi");
	assert_int_equal(fetch_driver_resolve("https://c", "netflow", &d, &bare, err), -EINVAL);
	/* (a line added to the table adds its name here) */
	assert_non_null(strstr(err, "unknown driver 'netflow' (known: flowapi, sna"));
	assert_int_equal(fetch_driver_resolve("ftp://c", NULL, &d, &bare, err), -EINVAL);
	assert_string_equal(err, "the collector URL must start with http:// or https:// "
			    "(sna+https:// for an SNA Manager, flowmon+https:// for a Flowmon "
			    "appliance)");
	assert_int_equal(fetch_driver_resolve("flowmon+https://f/", NULL, &d, &bare, err), 0);
	assert_string_equal(d->name, "flowmon");
	assert_string_equal(bare, "https://f/");
	assert_true(d->caps & FETCH_DRIVER_SESSIONS);
	assert_int_equal(fetch_driver_resolve("sna+ftp://c", NULL, &d, &bare, err), -EINVAL);

	fetch_driver_help(help, sizeof(help));
	assert_non_null(strstr(help, "flowapi (default)"));
	assert_non_null(strstr(help, "sna (also: a URL sna+https://MANAGER)"));
	assert_ptr_equal(fetch_driver_at(0), fetch_driver_find("flowapi"));
	/* nfdump+ssh:// is the nfdump driver with the URL ssh://... */
	assert_int_equal(fetch_driver_resolve("nfdump+ssh://u@c:22/nf", NULL, &d, &bare, err), 0);
	assert_string_equal(d->name, "nfdump");
	assert_string_equal(bare, "ssh://u@c:22/nf");
	assert_int_equal(fetch_driver_resolve("nfdump:/nf", NULL, &d, &bare, err), 0);
	assert_string_equal(bare, "/nf");
	assert_non_null(strstr(help, "nfdump+ssh://[USER@]HOST[:PORT]/ARCHIVE/DIR"));
}

static void test_token_file_modes(void **state)
{
	(void)state;
	char dir[] = "/tmp/test_guard.XXXXXX", path[64], err[FETCH_ERRLEN];
	static const mode_t ok[] = {0600, 0400, 0700, 0200};
	static const mode_t loose[] = {0644, 0640, 0604, 0660, 0602, 0620, 0610, 0601};
	int fd;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/token", dir);
	fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(fchmod(fd, ok[i]), 0);
		if (fetch_token_file_check(fd, path, err) != 0)
			fail_msg("mode %o refused: %s", ok[i], err);
	}
	for (size_t i = 0; i < sizeof(loose) / sizeof(loose[0]); i++) {
		char want[32];
		assert_int_equal(fchmod(fd, loose[i]), 0);
		err[0] = '\0';
		assert_int_equal(fetch_token_file_check(fd, path, err), -EPERM);
		snprintf(want, sizeof(want), "(mode %04o)", loose[i]);
		assert_non_null(strstr(err, want));
		assert_non_null(strstr(err, "chmod 600"));
	}
	if (geteuid() == 0) {	/* another user's file, however private */
		assert_int_equal(fchmod(fd, 0600), 0);
		assert_int_equal(fchown(fd, 65534, 65534), 0);
		assert_int_equal(fetch_token_file_check(fd, path, err), -EPERM);
		assert_non_null(strstr(err, "belongs to uid 65534"));
	}
	close(fd);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url_credentials),
		cmocka_unit_test(test_clear_text_warning),
		cmocka_unit_test(test_driver_resolve),
		cmocka_unit_test(test_token_file_modes),
	};
	return cmocka_run_group_tests_name("guard", tests, NULL, NULL);
}
