/*
 * test_nfdump_ssh.c - the nfdump dialect over ssh (fetch/nfdump_ssh.c)
 * without an sshd: the URL's grammar, the quoting (run through a real
 * /bin/sh with hostile words), ssh's argv, the error mapping, and the
 * remote listing run through a fake ssh that runs the command with a
 * local /bin/sh (the same files as nfd_archive_files must come out).
 * test_nfdump_ssh.py does the same against a real sshd.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fetch.h"
#include "nfdump.h"
#include "nfdump_ssh.h"
#include "testutil.h"

#define T0 1795737600000LL	/* 2026-11-27T00:00:00Z */
#define DAY 86400000LL

static char err[FETCH_ERRLEN];

/* Words a path or an argument may hold that a shell would act on. */
static const char *const hostile[] = {
	"plain",
	"",
	"a b  c",
	"it's",
	"''",
	"'; touch /tmp/nfdump_ssh_pwned; '",
	"$(touch /tmp/nfdump_ssh_pwned)",
	"`touch /tmp/nfdump_ssh_pwned`",
	"\"$HOME\" \\ * ? ~ ! # & | > < ;",
	"${IFS}x$((1+1))",
	"tab\there",
	"\\'",
};

/* ---- the URL ---- */

static void parse_ok(const char *url, const char *user, const char *host, int port,
		     const char *path)
{
	struct nfd_ssh_url u;
	int rc = nfd_ssh_parse(url, &u, err);
	if (rc)
		fail_msg("%s refused: %s", url, err);
	assert_string_equal(u.user, user);
	assert_string_equal(u.host, host);
	assert_int_equal(u.port, port);
	assert_string_equal(u.path, path);
}

static void parse_bad(const char *url, const char *why)
{
	struct nfd_ssh_url u;
	err[0] = '\0';
	assert_int_equal(nfd_ssh_parse(url, &u, err), -EINVAL);
	if (!strstr(err, why))
		fail_msg("%s: '%s' does not say '%s'", url, err, why);
}

static void test_parse(void **state)
{
	(void)state;
	parse_ok("nfdump+ssh://collector/var/cache/nfdump", "", "collector", 0,
		 "/var/cache/nfdump");
	parse_ok("nfdump+ssh://flow_ops.2-x@nf-1.example.org:2222/data/", "flow_ops.2-x",
		 "nf-1.example.org", 2222, "/data/");
	parse_ok("nfdump+ssh://192.0.2.7/a", "", "192.0.2.7", 0, "/a");
	parse_ok("nfdump+ssh://u@[2001:DB8::0:1]:65535/x", "u", "2001:db8::1", 65535, "/x");
	parse_ok("nfdump+ssh://[::1]/x", "", "::1", 0, "/x");
	/* a path is taken literally: quotes, spaces, $ and ; are quoted later */
	parse_ok("nfdump+ssh://h/it's a $(x); `y` %41", "", "h", 0, "/it's a $(x); `y` %41");

	parse_bad("ssh://h/x", "starts with nfdump+ssh://");
	parse_bad("nfdump+ssh://h", "no archive path");
	parse_bad("nfdump+ssh:///x", "not a DNS name");
	parse_bad("nfdump+ssh://@h/x", "the user must be");
	parse_bad("nfdump+ssh://-oProxyCommand=x@h/x", "the user must be");
	parse_bad("nfdump+ssh://a b@h/x", "the user holds ' '");
	parse_bad("nfdump+ssh://a;b@h/x", "the user holds ';'");
	parse_bad("nfdump+ssh://abcdefghijklmnopqrstuvwxyz0123456@h/x", "the user must be");
	parse_bad("nfdump+ssh://-oProxyCommand=x/x", "not a DNS name");
	parse_bad("nfdump+ssh://h-/x", "not a DNS name");
	parse_bad("nfdump+ssh://a..b/x", "not a DNS name");
	parse_bad("nfdump+ssh://a_b/x", "not a DNS name");
	parse_bad("nfdump+ssh://h$(x)/x", "not a DNS name");
	parse_bad("nfdump+ssh://2001:db8::1/x", "the port must be");
	parse_bad("nfdump+ssh://aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.b/x",
		  "not a DNS name");
	parse_bad("nfdump+ssh://[2001:db8::1/x", "needs its ']'");
	parse_bad("nfdump+ssh://[fe80::1%eth0]/x", "not an IPv6 address");
	parse_bad("nfdump+ssh://[192.0.2.1]/x", "not an IPv6 address");
	parse_bad("nfdump+ssh://[::1]x/x", "only ':PORT'");
	parse_bad("nfdump+ssh://h:/x", "1 to 65535");
	parse_bad("nfdump+ssh://h:0/x", "1 to 65535");
	parse_bad("nfdump+ssh://h:022/x", "1 to 65535");
	parse_bad("nfdump+ssh://h:65536/x", "1 to 65535");
	parse_bad("nfdump+ssh://h:22a/x", "a number");
	parse_bad("nfdump+ssh://h/a\nb", "control character (0x0a");
	parse_bad("nfdump+ssh://h/a\rb", "control character (0x0d");
	parse_bad("nfdump+ssh://h/a:b", "-M directories");
	char long_url[NFD_SSH_PATH_MAX + 40];
	snprintf(long_url, sizeof(long_url), "nfdump+ssh://h/%0*d", NFD_SSH_PATH_MAX, 0);
	parse_bad(long_url, "longer than");
}

/* ---- quoting ---- */

/* Run "printf '%s\n' WORDS" through /bin/sh -c, where WORDS are the quoted
 * forms of words; what it prints must be the words themselves. */
static void test_quote_through_sh(void **state)
{
	(void)state;
	char cmd[4096] = "printf '%s\\n'";
	char want[4096] = "", got[4096];
	size_t used = strlen(cmd), wl = 0, n;
	FILE *p;

	unlink("/tmp/nfdump_ssh_pwned");
	for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
		strcat(cmd, " ");
		used++;
		assert_int_equal(nfd_ssh_quote(cmd, sizeof(cmd), &used, hostile[i]), 0);
		assert_int_equal(used, strlen(cmd));
		wl += (size_t)snprintf(want + wl, sizeof(want) - wl, "%s\n", hostile[i]);
	}
	p = popen(cmd, "r");
	assert_non_null(p);
	n = fread(got, 1, sizeof(got) - 1, p);
	got[n] = '\0';
	assert_int_equal(pclose(p), 0);
	assert_string_equal(got, want);
	assert_int_equal(access("/tmp/nfdump_ssh_pwned", F_OK), -1);
	/* what does not fit is refused, the buffer as it was */
	char small[8] = "ab";
	used = 2;
	assert_int_equal(nfd_ssh_quote(small, sizeof(small), &used, "it's"), -E2BIG);
	assert_string_equal(small, "ab");
	assert_int_equal(used, 2);
	assert_int_equal(nfd_ssh_quote(small, sizeof(small), &used, "ok"), 0);
	assert_string_equal(small, "ab'ok'");
}

/* ---- ssh's command ---- */

static void argv_is(char *const *argv, const char *const *want)
{
	size_t i = 0;
	for (; want[i]; i++) {
		assert_non_null(argv[i]);
		assert_string_equal(argv[i], want[i]);
	}
	assert_null(argv[i]);
}

static void test_argv(void **state)
{
	(void)state;
	struct nfd_ssh_url u;
	struct nfd_ssh_opts o = {0};
	struct nfd_ssh_cmd c;

	setenv("HOME", "/home/ops", 1);
	unsetenv("SSH_AUTH_SOCK");
	setenv("LD_PRELOAD", "/evil.so", 1);
	assert_int_equal(nfd_ssh_parse("nfdump+ssh://collector/var/cache/nfdump", &u, err), 0);
	assert_int_equal(nfd_ssh_argv(&u, &o, "true", &c, err), 0);
	argv_is(c.argv, (const char *const[]){
		"ssh", "-T", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o",
		"ServerAliveInterval=15", "-o", "ServerAliveCountMax=3", "-o", "ControlMaster=no",
		"--", "collector", "true", NULL});
	argv_is(c.envp, (const char *const[]){"PATH=/usr/local/bin:/usr/bin:/bin",
					      "HOME=/home/ops", NULL});
	nfd_ssh_cmd_free(&c);

	setenv("SSH_AUTH_SOCK", "/run/user/0/agent", 1);
	assert_int_equal(nfd_ssh_parse("nfdump+ssh://ops@[2001:db8::7]:2222/a", &u, err), 0);
	o = (struct nfd_ssh_opts){.ssh = "/usr/bin/ssh", .config_file = "/etc/flowfs/ssh_config",
				  .identity_file = "~/.ssh/id_flowfs",
				  .known_hosts = "/etc/flowfs/known_hosts", .connect_timeout_s = 3,
				  .alive_interval_s = 5};
	assert_int_equal(nfd_ssh_argv(&u, &o, "x y", &c, err), 0);
	argv_is(c.argv, (const char *const[]){
		"/usr/bin/ssh", "-T", "-o", "BatchMode=yes", "-o", "ConnectTimeout=3", "-o",
		"ServerAliveInterval=5", "-o", "ServerAliveCountMax=3", "-o", "ControlMaster=no",
		"-F", "/etc/flowfs/ssh_config", "-i", "~/.ssh/id_flowfs",
		"-o", "UserKnownHostsFile=/etc/flowfs/known_hosts", "-p", "2222", "-l", "ops", "--",
		"2001:db8::7", "x y", NULL});
	argv_is(c.envp, (const char *const[]){"PATH=/usr/local/bin:/usr/bin:/bin",
					      "HOME=/home/ops",
					      "SSH_AUTH_SOCK=/run/user/0/agent", NULL});
	nfd_ssh_cmd_free(&c);
	unsetenv("LD_PRELOAD");

	/* file names ssh_config would split or expand */
	const char *bad[] = {"/a b", "/a%d", "/a\"b", "-oProxyCommand=x", "", "/a'b", "/a\nb"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		o = (struct nfd_ssh_opts){.known_hosts = bad[i]};
		assert_int_equal(nfd_ssh_argv(&u, &o, "x", &c, err), -EINVAL);
		assert_non_null(strstr(err, "the known_hosts file"));
		o = (struct nfd_ssh_opts){.identity_file = bad[i]};
		assert_int_equal(nfd_ssh_argv(&u, &o, "x", &c, err), -EINVAL);
	}
	/* a command longer than the bound */
	o = (struct nfd_ssh_opts){0};
	char *big = malloc(NFD_SSH_CMD_MAX + 2);
	assert_non_null(big);
	memset(big, 'x', NFD_SSH_CMD_MAX + 1);
	big[NFD_SSH_CMD_MAX + 1] = '\0';
	assert_int_equal(nfd_ssh_argv(&u, &o, big, &c, err), -E2BIG);
	free(big);
}

/* nfd_ssh_wrap's remote command, run by /bin/sh with a fake nfdump that
 * writes its arguments and TZ, LC_ALL to a file: nfd_argv's argv exactly,
 * for an archive whose path is hostile, and no marker made. */
static void test_wrap_through_sh(void **state)
{
	(void)state;
	char dir[] = "/tmp/test_nfdump_ssh.XXXXXX", prog[128], args[160], root[512];
	char got[2048] = "", want[2048] = "";
	struct nfd_file f[2] = {{T0, "nfcapd.202611270000", 0}, {T0, "nfcapd.202611270005", 0}};
	struct nfd_files files = {f, 2};
	struct cache_query q = Q("10.0.1.10", "192.0.2.0/24", T0, T0 + DAY);
	struct nfd_ssh_url u = {.host = "h"};
	struct nfd_ssh_opts o = {0};
	struct nfd_cmd c;
	struct nfd_ssh_cmd s;
	size_t wl = 0, n;
	FILE *fp;

	assert_non_null(mkdtemp(dir));
	snprintf(prog, sizeof(prog), "%s/fake nfdump", dir);
	snprintf(args, sizeof(args), "%s/args", dir);
	fp = fopen(prog, "w");
	assert_non_null(fp);
	fprintf(fp, "#!/bin/sh\nprintf 'TZ=%%s LC_ALL=%%s\\n' \"$TZ\" \"$LC_ALL\" > '%s'\n"
		"printf '%%s\\n' \"$0\" \"$@\" >> '%s'\n", args, args);
	fclose(fp);
	assert_int_equal(chmod(prog, 0755), 0);
	unlink("/tmp/nfdump_ssh_pwned");
	for (size_t i = 5; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
		struct nfd_archive a = {.root = root};
		snprintf(root, sizeof(root), "/data/%s/nfdump", hostile[i]);
		if (strchr(hostile[i], ':'))
			continue;
		assert_int_equal(nfd_argv(prog, &a, &files, 0, &q, &c, err), 0);
		assert_int_equal(nfd_ssh_wrap(&u, &o, &c, &s, err), 0);
		assert_int_equal(strncmp(s.remote, "exec env 'TZ=UTC' 'LC_ALL=C' '", 30), 0);
		char *argv[] = {(char *)"/bin/sh", (char *)"-c", s.remote, NULL};
		char *envp[] = {(char *)"PATH=/usr/bin:/bin", (char *)"TZ=Europe/Berlin", NULL};
		struct nfd_buf b = {0};
		assert_int_equal(nfd_run(argv, envp, 0, NULL, 4096, &b, err), 0);
		nfd_buf_free(&b);
		nfd_ssh_cmd_free(&s);
		fp = fopen(args, "r");
		assert_non_null(fp);
		n = fread(got, 1, sizeof(got) - 1, fp);
		got[n] = '\0';
		fclose(fp);
		wl = (size_t)snprintf(want, sizeof(want), "TZ=UTC LC_ALL=C\n");
		for (size_t k = 0; c.argv[k]; k++)
			wl += (size_t)snprintf(want + wl, sizeof(want) - wl, "%s\n", c.argv[k]);
		assert_string_equal(got, want);
	}
	assert_int_equal(access("/tmp/nfdump_ssh_pwned", F_OK), -1);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static void test_errno(void **state)
{
	(void)state;
	assert_int_equal(nfd_ssh_errno(-EIO, "ssh exited with status 255 (x): root@h: "
				       "Permission denied (publickey)."), -EACCES);
	assert_int_equal(nfd_ssh_errno(-EIO, "ssh exited with status 255 (x): No ED25519 host "
				       "key is known for [127.0.0.1]:2222 and you have requested "
				       "strict checking.\\nHost key verification failed."), -EACCES);
	assert_int_equal(nfd_ssh_errno(-EIO, "ssh exited with status 255 (x): ssh: connect to "
				       "host h port 22: Connection refused"), -EHOSTUNREACH);
	assert_int_equal(nfd_ssh_errno(-EIO, "ssh exited with status 255 (x): ssh: Could not "
				       "resolve hostname nx: Name or service not known"),
			 -EHOSTUNREACH);
	assert_int_equal(nfd_ssh_errno(-EIO, "ssh exited with status 255 (x): something else"),
			 -EIO);
	/* the remote nfdump's own failures stay -EIO, whatever they say */
	assert_int_equal(nfd_ssh_errno(-EIO, "ssh exited with status 254 (the filter was "
				       "refused): Permission denied"), -EIO);
	assert_int_equal(nfd_ssh_errno(-ETIMEDOUT, "ssh did not finish"), -ETIMEDOUT);
}

/* ---- the listing, through a fake ssh ---- */

static char fake_ssh[160];

/* A fake ssh: skips the options up to "--" and the host, then runs the
 * remote command with /bin/sh -c, as sshd would with the user's shell.
 * PRE, when set, is printed first (a login script that prints), and
 * FAKE_STATUS makes it fail like ssh with its message. */
static void make_fake_ssh(const char *dir)
{
	FILE *fp;

	snprintf(fake_ssh, sizeof(fake_ssh), "%s/ssh", dir);
	fp = fopen(fake_ssh, "w");
	assert_non_null(fp);
	fprintf(fp, "#!/bin/sh\nwhile [ \"$1\" != -- ]; do shift; done; shift 2\n"
		"[ -f \"$0.pre\" ] && cat \"$0.pre\"\n"
		"[ -f \"$0.fail\" ] && { cat \"$0.fail\" >&2; exit 255; }\n"
		"exec /bin/sh -c \"$1\"\n");
	fclose(fp);
	assert_int_equal(chmod(fake_ssh, 0755), 0);
}

/* Make the empty file dir/rel and its directories (any bytes in the names:
 * no shell involved). */
static void touch(const char *dir, const char *rel)
{
	char p[512];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", dir, rel);
	for (char *s = strchr(p + 1, '/'); s; s = strchr(s + 1, '/')) {
		*s = '\0';
		if (mkdir(p, 0755) != 0)
			assert_int_equal(errno, EEXIST);
		*s = '/';
	}
	fd = open(p, O_WRONLY | O_CREAT, 0644);
	assert_true(fd >= 0);
	close(fd);
}

/* nfd_ssh_files and nfd_archive_files agree on a, [s, e). */
static void same_files(const struct nfd_archive *a, int64_t s, int64_t e, size_t want_n)
{
	struct nfd_ssh_url u = {.host = "h"};
	struct nfd_ssh_opts o = {.ssh = fake_ssh};
	struct nfd_files local, remote;

	assert_int_equal(nfd_archive_files(a, s, e, &local, err), 0);
	if (nfd_ssh_files(&u, &o, a, s, e, 0, NULL, &remote, err) != 0)
		fail_msg("nfd_ssh_files: %s", err);
	assert_int_equal(remote.n, local.n);
	assert_int_equal(local.n, want_n);
	for (size_t i = 0; i < local.n; i++) {
		assert_string_equal(remote.v[i].rel, local.v[i].rel);
		assert_true(remote.v[i].ms == local.v[i].ms);
	}
	nfd_files_free(&local);
	nfd_files_free(&remote);
}

static void test_listing(void **state)
{
	(void)state;
	char dir[] = "/tmp/test_nfdump_ssh.XXXXXX", root[256], cmd[1024];
	assert_non_null(mkdtemp(dir));
	make_fake_ssh(dir);
	/* a hostile root, a flat layout with a gap, names to ignore, a name
	 * with a newline that would read as two files but for ls -q */
	snprintf(root, sizeof(root), "%s/it's $(x) a;b", dir);
	touch(root, "nfcapd.202611262355");
	touch(root, "nfcapd.202611270000");
	touch(root, "nfcapd.202611270010");
	touch(root, "nfcapd.current.4711");
	touch(root, "nfcapd.202611270005\nnfcapd.202611270015");
	touch(root, "!0");
	struct nfd_archive a = {.root = root, .files_tz = "UTC"};
	same_files(&a, T0, T0 + 300000, 2);
	same_files(&a, T0 - DAY, T0 + DAY, 3);
	/* layout 2 (hours): missing hours and a missing day are no files */
	snprintf(root, sizeof(root), "%s/hours", dir);
	touch(root, "2026/11/26/23/nfcapd.202611262355");
	touch(root, "2026/11/27/00/nfcapd.202611270000");
	touch(root, "2026/11/27/02/nfcapd.202611270200");
	a = (struct nfd_archive){.root = root, .layout = 2, .files_tz = "UTC"};
	same_files(&a, T0 - 3600000, T0 + 3 * 3600000, 3);
	same_files(&a, T0 + 5 * DAY, T0 + 6 * DAY, 0);
	/* nfsen channels, a file in both once */
	snprintf(root, sizeof(root), "%s/nfsen", dir);
	touch(root, "up1/2026/11/27/nfcapd.202611270000");
	touch(root, "up2/2026/11/27/nfcapd.202611270000");
	touch(root, "up2/2026/11/27/nfcapd.202611270005");
	a = (struct nfd_archive){.root = root, .channels = {"up1", "up2"}, .nchannels = 2,
				 .layout = 1, .files_tz = "UTC"};
	same_files(&a, T0, T0 + 60000, 2);

	/* no archive at the path: -ENOENT, as locally */
	struct nfd_ssh_url u = {.host = "h"};
	struct nfd_ssh_opts o = {.ssh = fake_ssh};
	struct nfd_files f;
	snprintf(root, sizeof(root), "%s/none", dir);
	a = (struct nfd_archive){.root = root, .files_tz = "UTC"};
	assert_int_equal(nfd_ssh_files(&u, &o, &a, T0, T0 + 1, 0, NULL, &f, err), -ENOENT);
	assert_non_null(strstr(err, "none"));
	/* a login script that prints: refused, saying so */
	snprintf(root, sizeof(root), "%s/hours", dir);
	a = (struct nfd_archive){.root = root, .layout = 2, .files_tz = "UTC"};
	snprintf(cmd, sizeof(cmd), "echo 'Welcome to the collector' > '%s.pre'", fake_ssh);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(nfd_ssh_files(&u, &o, &a, T0, T0 + 1, 0, NULL, &f, err), -EBADMSG);
	assert_non_null(strstr(err, "Welcome to the collector"));
	/* ssh's own failure, its message in the error, mapped */
	snprintf(cmd, sizeof(cmd), "rm '%s.pre' && echo 'root@h: Permission denied "
		 "(publickey).' > '%s.fail'", fake_ssh, fake_ssh);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(nfd_ssh_files(&u, &o, &a, T0, T0 + 1, 0, NULL, &f, err), -EACCES);
	assert_non_null(strstr(err, "ssh exited with status 255 (ssh could not connect, log in "
				    "or trust the host key): root@h: Permission denied"));
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* tree_names' take: the names, "d:" before a directory's, one per line. */
static int tree_take(void *arg, const char *name, bool dir)
{
	char *out = arg;
	size_t n = strlen(out);

	snprintf(out + n, 1024 - n, "%s%s\n", dir ? "d:" : "", name);
	return 0;
}

/* The names nfd_ssh_tree_list gives for rel, sorted by ls; rc in *rc. */
static const char *tree_names(const struct nfd_ssh_tree *t, const char *rel, int *rc)
{
	static char out[1024];

	out[0] = '\0';
	*rc = nfd_ssh_tree_list(t, rel, tree_take, out);
	return out;
}

/* The archive's tree at open, through the fake ssh: every directory
 * indexed by its path under the archive, directories told from files,
 * dot files left out, a name with a newline one name; a missing archive
 * -ENOENT, a login script that prints -EBADMSG. */
static void test_tree(void **state)
{
	(void)state;
	char dir[] = "/tmp/test_nfdump_ssh.XXXXXX", root[256], cmd[1024];
	struct nfd_ssh_opts o = {.ssh = fake_ssh};
	struct nfd_ssh_url u = {.host = "h"};
	struct nfd_ssh_tree t;
	int rc;

	assert_non_null(mkdtemp(dir));
	make_fake_ssh(dir);
	snprintf(root, sizeof(root), "%s/it's $(x) a;b", dir);
	touch(root, "live/2026/11/27/nfcapd.202611270000");
	touch(root, "live/2026/11/27/nfcapd.202611270005");
	touch(root, "live/.hidden");
	touch(root, "peer/2026/11/26/nfcapd.202611262355");
	touch(root, "nfcapd.202611270005\nnfcapd.202611270015");
	snprintf(u.path, sizeof(u.path), "%s", root);
	if (nfd_ssh_tree_read(&u, &o, 0, NULL, &t, err) != 0)
		fail_msg("nfd_ssh_tree_read: %s", err);
	assert_string_equal(tree_names(&t, "", &rc), "d:live\nnfcapd.202611270005?nfcapd."
			    "202611270015\nd:peer\n");
	assert_int_equal(rc, 0);
	assert_string_equal(tree_names(&t, "live", &rc), "d:2026\n");
	assert_string_equal(tree_names(&t, "live/2026/11/27", &rc),
			    "nfcapd.202611270000\nnfcapd.202611270005\n");
	assert_string_equal(tree_names(&t, "peer/2026/11/26", &rc), "nfcapd.202611262355\n");
	tree_names(&t, "live/2026/12", &rc);
	assert_int_equal(rc, -ENOENT);
	nfd_ssh_tree_free(&t);

	/* an empty archive: one directory, no names */
	snprintf(u.path, sizeof(u.path), "%s/empty", dir);
	assert_int_equal(mkdir(u.path, 0755), 0);
	assert_int_equal(nfd_ssh_tree_read(&u, &o, 0, NULL, &t, err), 0);
	assert_string_equal(tree_names(&t, "", &rc), "");
	assert_int_equal(rc, 0);
	nfd_ssh_tree_free(&t);

	snprintf(u.path, sizeof(u.path), "%s/none", dir);
	assert_int_equal(nfd_ssh_tree_read(&u, &o, 0, NULL, &t, err), -ENOENT);
	assert_non_null(strstr(err, "no archive at"));
	snprintf(u.path, sizeof(u.path), "%s", root);
	snprintf(cmd, sizeof(cmd), "echo 'Welcome to the collector' > '%s.pre'", fake_ssh);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(nfd_ssh_tree_read(&u, &o, 0, NULL, &t, err), -EBADMSG);
	assert_non_null(strstr(err, "Welcome to the collector"));
	snprintf(cmd, sizeof(cmd), "rm '%s.pre' && echo 'Host key verification failed.' > "
		 "'%s.fail'", fake_ssh, fake_ssh);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(nfd_ssh_tree_read(&u, &o, 0, NULL, &t, err), -EACCES);
	assert_non_null(strstr(err, "Host key verification failed"));
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_quote_through_sh),
		cmocka_unit_test(test_argv),
		cmocka_unit_test(test_wrap_through_sh),
		cmocka_unit_test(test_errno),
		cmocka_unit_test(test_listing),
		cmocka_unit_test(test_tree),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
