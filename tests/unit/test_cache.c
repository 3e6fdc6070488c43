/*
 * test_cache.c - unit tests of the cache room's store: prefixes and their
 * text, interval arithmetic, opening (modes, identity, schema versions),
 * windows and their atomicity, coverage with provisional rows, gaps, lookup
 * tables, counts with a peer, and the query plan the renderers rely on.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <sqlite3.h>

#include "cache.h"
#include "cache_i.h"

#define DAY0 1694736000000LL	/* 2023-09-15T00:00:00Z */
#define HOUR 3600000LL

#include "testutil.h"

/* ---- helpers ------------------------------------------------------------------ */

static char *tmpdir(void)
{
	char *d = strdup("/tmp/test_cache.XXXXXX");
	assert_non_null(d);
	assert_non_null(mkdtemp(d));
	return d;
}

static void rmtree(char *d)
{
	nftw(d, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(d);
}

static struct flow_rec R(const char *id, int64_t start, const char *src, const char *dst)
{
	struct flow_rec r;
	memset(&r, 0, sizeof(r));
	snprintf(r.id, sizeof(r.id), "%s", id);
	r.start_ms = start;
	r.end_ms = start + 1000;
	memcpy(r.src, P(src).addr, 16);
	memcpy(r.dst, P(dst).addr, 16);
	r.sport = 40000;
	r.dport = 443;
	r.proto = 6;
	r.tcp_flags = 0x1b;
	r.icmp_type = r.icmp_code = -1;
	r.pkts = 10;
	r.bytes = 1000;
	r.in_if = r.out_if = r.exporter = r.app = r.src_as = r.dst_as = r.sampling = -1;
	return r;
}

static const struct cache_identity ID = {"https://collector.example/", "flowsim", "flowapi"};

static struct cache *open_ok(const char *dir)
{
	char err[CACHE_ERRLEN] = "";
	struct cache *c = NULL;
	int rc = cache_open(dir, &ID, &c, err);
	if (rc)
		fail_msg("cache_open: %d %s", rc, err);
	return c;
}

static int64_t count(struct cache *c, const struct cache_query *q)
{
	int64_t n = -1;
	char err[CACHE_ERRLEN];
	assert_int_equal(cache_count(c, q, &n, err), 0);
	return n;
}

/* Remove a database file and whatever WAL files it left. */
static void unlink_db(const char *path)
{
	char p[700];
	unlink(path);
	snprintf(p, sizeof(p), "%s-wal", path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", path);
	unlink(p);
}

/* ---- prefixes ------------------------------------------------------------------ */

static void canon(const char *in, const char *want)
{
	struct cache_prefix p;
	char buf[64];
	assert_int_equal(cache_prefix_parse(in, &p), 0);
	cache_prefix_format(&p, buf, sizeof(buf));
	assert_string_equal(buf, want);
}

static void test_prefix_parse(void **state)
{
	(void)state;
	struct cache_prefix p;

	assert_int_equal(cache_prefix_parse("10.1.2.3", &p), 0);
	assert_true(p.v4);
	assert_int_equal(p.len, 128);
	assert_int_equal(p.addr[10], 0xff);
	assert_int_equal(p.addr[15], 3);
	assert_int_equal(cache_prefix_parse("10.1.2.0/24", &p), 0);
	assert_int_equal(p.len, 120);
	assert_int_equal(cache_prefix_parse("2001:DB8::/32", &p), 0);
	assert_false(p.v4);
	assert_int_equal(p.len, 32);

	canon("192.0.2.10", "192.0.2.10");
	canon("192.0.2.10/32", "192.0.2.10");
	canon("198.51.100.0/24", "198.51.100.0/24");
	canon("0.0.0.0/0", "0.0.0.0/0");
	canon("::/0", "::/0");
	canon("2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1");
	canon("2001:db8::1/128", "2001:db8::1");
	canon("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1");	/* first run on a tie */
	canon("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1");	/* one zero group stays */
	canon("2001:0:0:1:0:0:0:1", "2001:0:0:1::1");		/* the longest run */
	canon("::", "::");
	canon("::1", "::1");
	canon("1::", "1::");
	canon("fe80::/10", "fe80::/10");
	canon("::ffff:192.0.2.10", "192.0.2.10");		/* mapped is IPv4 */
	canon("::FFFF:c000:0200/120", "192.0.2.0/24");
	canon("::102:304", "::102:304");			/* not the deprecated ::1.2.3.4 */
	assert_int_equal(cache_prefix_parse("::ffff:192.0.2.0/120", &p), 0);
	assert_true(p.v4);

	const char *bad[] = {"", "10.1.2", "10.1.2.3/24", "10.1.2.3/33", "10.1.2.0/",
			     "10.1.2.0/-1", "::1/129", "10.1.2.0/2x", "host.example",
			     "1.2.3.4 ", " 1.2.3.4", "/8", "10.0.0.0/0008", "2001:db8::/16",
			     "fe80::1%eth0", "1.2.3.04", "256.1.1.1", "10.0.0.0/+8", NULL};
	for (size_t i = 0; bad[i]; i++) {
		if (cache_prefix_parse(bad[i], &p) != -EINVAL)
			fail_msg("accepted \"%s\"", bad[i]);
	}
}

static void test_prefix_contains_range(void **state)
{
	(void)state;
	struct cache_prefix net = P("198.51.100.0/24"), all4 = P("0.0.0.0/0"),
			    all6 = P("::/0"), v6 = P("2001:db8::/32");
	uint8_t lo[16], hi[16];
	char a[64], b[64];

	assert_true(cache_prefix_contains(&net, P("198.51.100.77").addr));
	assert_true(cache_prefix_contains(&net, P("198.51.100.0").addr));
	assert_true(cache_prefix_contains(&net, P("198.51.100.255").addr));
	assert_false(cache_prefix_contains(&net, P("198.51.101.0").addr));
	assert_true(cache_prefix_contains(&all4, P("1.2.3.4").addr));
	assert_false(cache_prefix_contains(&all4, P("2001:db8::1").addr));
	assert_false(cache_prefix_contains(&all6, P("1.2.3.4").addr));	/* families never mix */
	assert_true(cache_prefix_contains(&all6, P("2001:db8::1").addr));
	assert_true(cache_prefix_contains(&v6, P("2001:db8:ffff::1").addr));
	assert_false(cache_prefix_contains(&v6, P("2001:db9::").addr));
	struct cache_prefix odd = P("10.0.0.128/25");
	assert_true(cache_prefix_contains(&odd, P("10.0.0.200").addr));
	assert_false(cache_prefix_contains(&odd, P("10.0.0.127").addr));

	cache_prefix_range(&net, lo, hi);
	cache_addr_format(lo, a, sizeof(a));
	cache_addr_format(hi, b, sizeof(b));
	assert_string_equal(a, "198.51.100.0");
	assert_string_equal(b, "198.51.100.255");
	cache_prefix_range(&all4, lo, hi);
	cache_addr_format(lo, a, sizeof(a));
	cache_addr_format(hi, b, sizeof(b));
	assert_string_equal(a, "0.0.0.0");
	assert_string_equal(b, "255.255.255.255");
	cache_prefix_range(&v6, lo, hi);
	cache_addr_format(lo, a, sizeof(a));
	cache_addr_format(hi, b, sizeof(b));
	assert_string_equal(a, "2001:db8::");
	assert_string_equal(b, "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff");
	struct cache_prefix host = P("192.0.2.10");
	cache_prefix_range(&host, lo, hi);
	assert_memory_equal(lo, hi, 16);
	/* a buffer too small is cut, never overrun */
	char small[5];
	cache_addr_format(P("192.0.2.10").addr, small, sizeof(small));
	assert_string_equal(small, "192.");
}

/* ---- intervals ------------------------------------------------------------------- */

static void expect_ivals(const struct cache_ivals *s, const int64_t *want, size_t n)
{
	if (s->n != n) {
		for (size_t i = 0; i < s->n; i++)
			print_message("  [%lld, %lld)\n", (long long)s->v[i].start,
				      (long long)s->v[i].end);
		fail_msg("%zu intervals, want %zu", s->n, n);
	}
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(s->v[i].start, want[2 * i]);
		assert_int_equal(s->v[i].end, want[2 * i + 1]);
	}
}

static void test_ivals_add(void **state)
{
	(void)state;
	struct cache_ivals s = {0};

	assert_int_equal(cache_ivals_add(&s, 10, 20), 0);
	assert_int_equal(cache_ivals_add(&s, 30, 40), 0);
	assert_int_equal(cache_ivals_add(&s, 0, 5), 0);
	expect_ivals(&s, (int64_t[]){0, 5, 10, 20, 30, 40}, 3);
	assert_int_equal(cache_ivals_add(&s, 5, 10), 0);	/* touches both: one interval */
	expect_ivals(&s, (int64_t[]){0, 20, 30, 40}, 2);
	assert_int_equal(cache_ivals_add(&s, 25, 25), 0);	/* empty: nothing */
	expect_ivals(&s, (int64_t[]){0, 20, 30, 40}, 2);
	assert_int_equal(cache_ivals_add(&s, 12, 15), 0);	/* inside */
	expect_ivals(&s, (int64_t[]){0, 20, 30, 40}, 2);
	assert_int_equal(cache_ivals_add(&s, 40, 41), 0);	/* touches the end */
	expect_ivals(&s, (int64_t[]){0, 20, 30, 41}, 2);
	assert_int_equal(cache_ivals_add(&s, 21, 29), 0);	/* a hole of 1 each side stays */
	expect_ivals(&s, (int64_t[]){0, 20, 21, 29, 30, 41}, 3);
	assert_int_equal(cache_ivals_add(&s, -5, 100), 0);	/* swallows all */
	expect_ivals(&s, (int64_t[]){-5, 100}, 1);
	assert_int_equal(cache_ivals_add(&s, 7, 3), -EINVAL);
	expect_ivals(&s, (int64_t[]){-5, 100}, 1);
	cache_ivals_free(&s);

	/* many in reverse order, every other one: then fill the holes */
	for (int i = 99; i >= 0; i--)
		assert_int_equal(cache_ivals_add(&s, i * 20, i * 20 + 10), 0);
	assert_int_equal(s.n, 100);
	for (size_t i = 1; i < s.n; i++)
		assert_true(s.v[i - 1].end < s.v[i].start);
	for (int i = 0; i < 100; i++)
		assert_int_equal(cache_ivals_add(&s, i * 20 + 10, i * 20 + 20), 0);
	expect_ivals(&s, (int64_t[]){0, 2000}, 1);
	cache_ivals_free(&s);
	assert_null(s.v);
	assert_int_equal(s.n, 0);
}

static void test_ivals_subtract(void **state)
{
	(void)state;
	struct cache_ivals s = {0}, out = {0};

	assert_int_equal(cache_ivals_subtract(&s, 0, 100, &out), 0);	/* nothing covered */
	expect_ivals(&out, (int64_t[]){0, 100}, 1);
	assert_int_equal(cache_ivals_subtract(&s, 50, 50, &out), 0);	/* empty range */
	assert_int_equal(out.n, 0);
	assert_int_equal(cache_ivals_add(&s, 10, 20), 0);
	assert_int_equal(cache_ivals_add(&s, 40, 60), 0);
	assert_int_equal(cache_ivals_subtract(&s, 0, 100, &out), 0);
	expect_ivals(&out, (int64_t[]){0, 10, 20, 40, 60, 100}, 3);
	assert_int_equal(cache_ivals_subtract(&s, 10, 60, &out), 0);	/* edges covered */
	expect_ivals(&out, (int64_t[]){20, 40}, 1);
	assert_int_equal(cache_ivals_subtract(&s, 15, 45, &out), 0);	/* starts and ends inside */
	expect_ivals(&out, (int64_t[]){20, 40}, 1);
	assert_int_equal(cache_ivals_subtract(&s, 12, 18, &out), 0);	/* all covered */
	assert_int_equal(out.n, 0);
	assert_int_equal(cache_ivals_subtract(&s, 20, 40, &out), 0);	/* exactly the hole */
	expect_ivals(&out, (int64_t[]){20, 40}, 1);
	assert_int_equal(cache_ivals_subtract(&s, 60, 70, &out), 0);	/* touches the end */
	expect_ivals(&out, (int64_t[]){60, 70}, 1);
	assert_int_equal(cache_ivals_subtract(&s, 0, 10, &out), 0);	/* touches the start */
	expect_ivals(&out, (int64_t[]){0, 10}, 1);
	assert_int_equal(cache_ivals_subtract(&s, 61, 62, &out), 0);
	expect_ivals(&out, (int64_t[]){61, 62}, 1);
	assert_int_equal(cache_ivals_subtract(&s, 9, 5, &out), -EINVAL);
	assert_int_equal(cache_ivals_subtract(&s, 0, 100, &s), -EINVAL);
	cache_ivals_free(&s);
	cache_ivals_free(&out);
}

/* ---- opening ------------------------------------------------------------------------ */

static void test_open_modes(void **state)
{
	(void)state;
	char *top = tmpdir(), dir[512], want[600], hex[17];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen;
	struct stat sb;
	struct cache *c;
	mode_t old;

	snprintf(dir, sizeof(dir), "%s/a/b/flowfs", top);
	old = umask(0);	/* the modes must not depend on the umask */
	c = open_ok(dir);
	umask(old);
	assert_non_null(c);
	EVP_Digest(ID.url, strlen(ID.url), md, &mdlen, EVP_sha256(), NULL);
	for (int i = 0; i < 8; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	snprintf(want, sizeof(want), "%s/%s.db", dir, hex);
	assert_string_equal(cache_path(c), want);

	const char *dirs[] = {"a", "a/b", "a/b/flowfs"};
	for (int i = 0; i < 3; i++) {
		char p[600];
		snprintf(p, sizeof(p), "%s/%s", top, dirs[i]);
		assert_int_equal(stat(p, &sb), 0);
		assert_true(S_ISDIR(sb.st_mode));
		assert_int_equal(sb.st_mode & 07777, 0700);
	}
	/* a write makes the WAL and shared-memory files: 0600 too */
	struct cache_query q = Q("192.0.2.10", NULL, DAY0, DAY0 + HOUR);
	struct flow_rec r = R("a1", DAY0, "192.0.2.10", "198.51.100.1");
	char err[CACHE_ERRLEN];
	assert_int_equal(cache_put_window(c, &q, &r, 1, NULL, err), 0);
	const char *suffix[] = {"", "-wal", "-shm"};
	for (int i = 0; i < 3; i++) {
		char p[700];
		snprintf(p, sizeof(p), "%s%s", want, suffix[i]);
		assert_int_equal(stat(p, &sb), 0);
		if ((sb.st_mode & 07777) != 0600)
			fail_msg("%s has mode %o", p, sb.st_mode & 07777);
	}
	cache_close(c);

	/* reopening works and keeps the data; WAL is in force */
	c = open_ok(dir);
	assert_int_equal(count(c, &q), 1);
	cache_close(c);
	char slash[600];
	snprintf(slash, sizeof(slash), "%s//", dir);
	c = open_ok(slash);
	assert_string_equal(cache_path(c), want);
	cache_close(c);

	/* a directory that is a file */
	char file[600];
	snprintf(file, sizeof(file), "%s/plain", top);
	FILE *f = fopen(file, "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(cache_open(file, &ID, &c, err), -ENOTDIR);
	assert_null(c);
	rmtree(top);
}

/* cache_open in dir fails with want, and err holds 'says'; nothing is opened. */
static void open_refused(const char *dir, int want, const char *says)
{
	char err[CACHE_ERRLEN] = "";
	struct cache *c = (struct cache *)1;
	int rc = cache_open(dir, &ID, &c, err);

	if (rc != want || !strstr(err, says))
		fail_msg("cache_open(%s): %d \"%s\", wanted %d \"%s\"", dir, rc, err, want, says);
	assert_null(c);
}

/* The database's file name in dir (the URL's hash). */
static void db_name(const char *dir, char *out, size_t len)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen;
	char hex[17];

	EVP_Digest(ID.url, strlen(ID.url), md, &mdlen, EVP_sha256(), NULL);
	for (int i = 0; i < 8; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	snprintf(out, len, "%s/%s.db", dir, hex);
}

/* Issue 12, item 1: a cache directory another user can write, or that is
 * not the user's, is refused with a message saying how to fix it; so is a
 * link in its place, or in the database's (or its -wal's) place; a link
 * among its parents is resolved, and the database is opened by a path with
 * no link. */
static void test_open_refuses_shared_places(void **state)
{
	(void)state;
	char *top = tmpdir(), dir[512], real[512], link[512], slash[520], db[600], wal[610];
	char other[600], err[CACHE_ERRLEN];
	struct stat sb, db_sb;
	struct cache *c;
	int fd;

	snprintf(dir, sizeof(dir), "%s/cache", top);
	assert_int_equal(mkdir(dir, 0700), 0);
	c = open_ok(dir);
	cache_close(c);
	/* group or others may write: refused, however the rest is set */
	const mode_t loose[] = {0770, 0720, 0702, 0777, 01777};
	for (size_t i = 0; i < sizeof(loose) / sizeof(loose[0]); i++) {
		assert_int_equal(chmod(dir, loose[i]), 0);
		open_refused(dir, -EPERM, "chmod 700");
		open_refused(dir, -EPERM, "writable by group or others");
		assert_int_equal(cache_dir_open(dir, err), -EPERM);
	}
	/* reading is no danger: the files are 0600 */
	assert_int_equal(chmod(dir, 0755), 0);
	c = open_ok(dir);
	cache_close(c);
	assert_int_equal(chmod(dir, 0700), 0);
	fd = cache_dir_open(dir, err);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &sb), 0);
	assert_true(S_ISDIR(sb.st_mode));
	close(fd);

	/* another user's directory (root can give it away) */
	if (geteuid() == 0) {
		assert_int_equal(chown(dir, 65534, 65534), 0);
		open_refused(dir, -EPERM, "belongs to uid 65534");
		assert_int_equal(chown(dir, 0, 0), 0);
	}

	/* a link in the directory's place, with or without a trailing slash */
	snprintf(link, sizeof(link), "%s/link", top);
	assert_int_equal(symlink(dir, link), 0);
	open_refused(link, -ELOOP, "symbolic link");
	snprintf(slash, sizeof(slash), "%s/", link);
	open_refused(slash, -ELOOP, "symbolic link");
	assert_int_equal(cache_dir_open(link, err), -ELOOP);

	/* a link among the parents: followed, and the file's path has none */
	snprintf(real, sizeof(real), "%s/real", top);
	assert_int_equal(mkdir(real, 0700), 0);
	snprintf(link, sizeof(link), "%s/parent", top);
	assert_int_equal(symlink(real, link), 0);
	snprintf(slash, sizeof(slash), "%s/flowfs", link);
	c = open_ok(slash);
	snprintf(other, sizeof(other), "%s/flowfs", real);
	db_name(other, db, sizeof(db));
	assert_string_equal(cache_path(c), db);
	cache_close(c);

	/* a link in the database's place (to a database planted elsewhere) */
	db_name(dir, db, sizeof(db));
	snprintf(other, sizeof(other), "%s/planted.db", top);
	assert_int_equal(rename(db, other), 0);
	assert_int_equal(symlink(other, db), 0);
	assert_int_equal(stat(other, &db_sb), 0);
	open_refused(dir, -ELOOP, "symbolic link");
	assert_int_equal(stat(other, &sb), 0);
	assert_true(sb.st_size == db_sb.st_size && sb.st_mtime == db_sb.st_mtime);
	/* a dangling one is not followed to create its target either */
	assert_int_equal(unlink(other), 0);
	open_refused(dir, -ELOOP, "symbolic link");
	assert_int_equal(lstat(other, &sb), -1);
	assert_int_equal(unlink(db), 0);

	/* a link in the place of the write-ahead log */
	snprintf(wal, sizeof(wal), "%s-wal", db);
	assert_int_equal(symlink(other, wal), 0);
	open_refused(dir, -ELOOP, "-wal is a symbolic link");
	assert_int_equal(unlink(wal), 0);
	c = open_ok(dir);
	cache_close(c);

	/* another user's database file */
	if (geteuid() == 0) {
		assert_int_equal(chown(db, 65534, 65534), 0);
		open_refused(dir, -EPERM, "belongs to uid 65534");
	}
	rmtree(top);
}

static void test_identity(void **state)
{
	(void)state;
	char *dir = tmpdir(), err[CACHE_ERRLEN] = "";
	struct cache *c = open_ok(dir);
	struct cache_identity other = ID;

	cache_close(c);
	other.product = "nfsen";
	assert_int_equal(cache_open(dir, &other, &c, err), -EEXIST);
	assert_null(c);
	assert_non_null(strstr(err, "belongs to product \"flowsim\""));
	assert_non_null(strstr(err, ID.url));
	/* a different driver for the same collector is fine */
	other = ID;
	other.driver = "other";
	assert_int_equal(cache_open(dir, &other, &c, err), 0);
	cache_close(c);
	/* a different URL is a different file */
	other = ID;
	other.url = "https://other.example/";
	other.product = "nfsen";
	assert_int_equal(cache_open(dir, &other, &c, err), 0);
	assert_string_not_equal(cache_path(c), "");
	cache_close(c);
	/* bad arguments */
	assert_int_equal(cache_open(dir, NULL, &c, err), -EINVAL);
	other.url = "";
	assert_int_equal(cache_open(dir, &other, &c, err), -EINVAL);
	rmtree(dir);
}

static void test_schema_versions(void **state)
{
	(void)state;
	char *dir = tmpdir(), err[CACHE_ERRLEN] = "", path[600];
	struct cache *c = open_ok(dir);
	sqlite3 *db;

	snprintf(path, sizeof(path), "%s", cache_path(c));
	side_sql(c, "UPDATE meta SET value='99' WHERE key='schema_version'");
	cache_close(c);
	assert_int_equal(cache_open(dir, &ID, &c, err), -EPROTO);
	assert_null(c);
	assert_non_null(strstr(err, "99"));

	/* version 0, an empty database file: the migrations create the schema */
	unlink_db(path);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version=0", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	c = open_ok(dir);
	side_sql(c, "SELECT count(*) FROM flows");
	cache_close(c);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key="
					    "'schema_version'", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(atoi((const char *)sqlite3_column_text(st, 0)), CACHE_SCHEMA_VERSION);
	sqlite3_finalize(st);
	sqlite3_close(db);

	/* somebody else's database at that name is refused, not adopted */
	unlink_db(path);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "CREATE TABLE t(x)", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(cache_open(dir, &ID, &c, err), -EEXIST);
	assert_non_null(strstr(err, "not a flowfs cache"));
	rmtree(dir);
}

/* The schema of version 1, as the program of that version created it
 * (store_migrations[0] then): a file of that version must open. */
static const char V1_SCHEMA[] =
	"CREATE TABLE IF NOT EXISTS meta("
	"  key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL) WITHOUT ROWID;"
	"CREATE TABLE flows("
	"  subject TEXT NOT NULL, start INTEGER NOT NULL,"
	"  id TEXT NOT NULL CHECK (length(id) BETWEEN 1 AND 64),"
	"  \"end\" INTEGER NOT NULL,"
	"  src BLOB NOT NULL CHECK (length(src) = 16),"
	"  dst BLOB NOT NULL CHECK (length(dst) = 16),"
	"  sport INTEGER, dport INTEGER, proto INTEGER, tcp_flags INTEGER,"
	"  icmp_type INTEGER, icmp_code INTEGER, pkts INTEGER, bytes INTEGER,"
	"  in_if INTEGER, out_if INTEGER, exporter INTEGER, app INTEGER,"
	"  src_as INTEGER, dst_as INTEGER, sampling INTEGER,"
	"  src_groups TEXT, dst_groups TEXT, community_id TEXT,"
	"  PRIMARY KEY (subject, start, id)) WITHOUT ROWID;"
	"CREATE TABLE coverage("
	"  subject TEXT NOT NULL, peer TEXT NOT NULL,"
	"  start INTEGER NOT NULL, \"end\" INTEGER NOT NULL,"
	"  fetched_ms INTEGER NOT NULL, provisional INTEGER NOT NULL,"
	"  records INTEGER NOT NULL, CHECK (start < \"end\"));"
	"CREATE INDEX coverage_key ON coverage(subject, peer, start);"
	"CREATE TABLE gaps("
	"  subject TEXT NOT NULL, qpeer TEXT NOT NULL,"
	"  start INTEGER NOT NULL, \"end\" INTEGER NOT NULL,"
	"  peer TEXT NOT NULL, seen INTEGER NOT NULL, reason TEXT NOT NULL);"
	"CREATE INDEX gaps_key ON gaps(subject, qpeer, start);"
	"CREATE TABLE lookup("
	"  tbl INTEGER NOT NULL, key INTEGER NOT NULL, key2 INTEGER NOT NULL,"
	"  name TEXT NOT NULL, extra TEXT NOT NULL,"
	"  PRIMARY KEY (tbl, key, key2)) WITHOUT ROWID;"
	"CREATE TABLE lookup_age("
	"  tbl INTEGER PRIMARY KEY, fetched_ms INTEGER NOT NULL);"
	"INSERT INTO meta VALUES ('schema_version','1'),('url','https://collector.example/'),"
	"  ('product','flowsim'),('driver','flowapi');"
	/* one flow of 192.0.2.10 and its coverage, as version 1 stored them */
	"INSERT INTO flows(subject,start,id,\"end\",src,dst,sport,dport,proto,pkts,bytes)"
	"  VALUES ('192.0.2.10',1694736000005,'old1',1694736000009,"
	"  x'00000000000000000000ffffc000020a',x'00000000000000000000ffffc6336401',"
	"  40000,443,6,3,180);"
	"INSERT INTO coverage VALUES ('192.0.2.10','',1694736000000,1694739600000,1,0,1);";

/* The first column of the first row of sql on db, as text ("" for NULL). */
static void sql_text(sqlite3 *db, const char *sql, char *out, size_t len)
{
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	snprintf(out, len, "%s", sqlite3_column_text(st, 0) ? (const char *)sqlite3_column_text(st, 0) : "");
	sqlite3_finalize(st);
}

/* The cache file at path replaced by one of version 1 (V1_SCHEMA, made by
 * SQLite's defaults: 4 KiB pages, a rollback journal). */
static void write_v1(const char *path)
{
	sqlite3 *db;

	unlink_db(path);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, V1_SCHEMA, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

/* A cache file of version 1 is migrated when it is opened: the column
 * extra appears, the old rows read back whole with extra NULL (""), their
 * coverage still counts, and new rows keep their extra. */
static void test_migrate_v1(void **state)
{
	(void)state;
	char *dir = tmpdir(), err[CACHE_ERRLEN] = "", path[600], buf[512];
	struct cache_query q = Q("192.0.2.10", NULL, DAY0, DAY0 + HOUR);
	struct cache_ivals miss = {0};
	struct cache *c = open_ok(dir);
	struct flow_rec r, out;
	sqlite3_stmt *st;
	sqlite3 *db;

	snprintf(path, sizeof(path), "%s", cache_path(c));
	cache_close(c);
	write_v1(path);

	c = open_ok(dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sql_text(db, "SELECT value FROM meta WHERE key='schema_version'", buf, sizeof(buf));
	assert_int_equal(atoi(buf), 2);
	sql_text(db, "SELECT count(*) FROM pragma_table_info('flows') WHERE name='extra'"
		 " AND type='TEXT'", buf, sizeof(buf));
	assert_string_equal(buf, "1");
	sql_text(db, "SELECT count(*) FROM flows WHERE id='old1' AND extra IS NULL", buf,
		 sizeof(buf));
	assert_string_equal(buf, "1");
	assert_int_equal(cache_missing(c, &q, DAY0 + 2 * HOUR, 60000, &miss, err), 0);
	assert_int_equal(miss.n, 0);
	cache_ivals_free(&miss);

	r = R("new1", DAY0 + 6, "192.0.2.10", "198.51.100.1");
	snprintf(r.extra, sizeof(r.extra), "{\"serviceId\":1443}");
	assert_int_equal(cache_put_window(c, &q, &r, 1, NULL, err), 0);
	assert_int_equal(sqlite3_prepare_v2(c->db, CACHE_SQL_FLOWS, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(cache_bind_query(st, &q, "192.0.2.10"), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	memset(&out, 0x5a, sizeof(out));
	cache_row_decode(st, &out);
	assert_string_equal(out.id, "old1");
	assert_int_equal(out.start_ms, DAY0 + 5);
	assert_int_equal(out.dport, 443);
	assert_int_equal(out.bytes, 180);
	assert_int_equal(out.tcp_flags, -1);
	assert_string_equal(out.community_id, "");
	assert_string_equal(out.extra, "");
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	cache_row_decode(st, &out);
	assert_string_equal(out.id, "new1");
	assert_string_equal(out.extra, "{\"serviceId\":1443}");
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	sqlite3_close(db);
	cache_close(c);

	/* opened again: version 2 stays as it is */
	c = open_ok(dir);
	cache_close(c);
	rmtree(dir);
}

/* A new cache has 16 KiB pages (STORE_PAGE_SIZE: the store thread's CPU);
 * a file made with SQLite's default keeps its 4 KiB pages and its flows. */
static void test_page_size(void **state)
{
	(void)state;
	char *dir = tmpdir(), err[CACHE_ERRLEN] = "", path[600], buf[64];
	struct cache_query q = Q("192.0.2.10", NULL, DAY0, DAY0 + HOUR);
	struct cache *c = open_ok(dir);
	struct flow_rec r = R("p1", DAY0 + 5, "192.0.2.10", "198.51.100.1");
	sqlite3 *db;

	assert_int_equal(cache_put_window(c, &q, &r, 1, NULL, err), 0);
	snprintf(path, sizeof(path), "%s", cache_path(c));
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sql_text(db, "PRAGMA page_size", buf, sizeof(buf));
	assert_string_equal(buf, "16384");
	sqlite3_close(db);
	cache_close(c);

	write_v1(path);
	c = open_ok(dir);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sql_text(db, "PRAGMA page_size", buf, sizeof(buf));
	assert_string_equal(buf, "4096");
	sqlite3_close(db);
	assert_int_equal(count(c, &q), 1);
	cache_close(c);
	rmtree(dir);
}

/* ---- windows ----------------------------------------------------------------------------- */

static void test_put_window(void **state)
{
	(void)state;
	char *dir = tmpdir(), err[CACHE_ERRLEN];
	struct cache *c = open_ok(dir);
	struct cache_query q = Q("192.0.2.10", NULL, DAY0, DAY0 + 24 * HOUR);
	struct flow_rec r[6];

	r[0] = R("b2", DAY0 + 3000, "192.0.2.10", "198.51.100.1");
	r[1] = R("a1", DAY0 + 1000, "198.51.100.2", "192.0.2.10");
	r[2] = R("c3", DAY0 + 2000, "192.0.2.10", "203.0.113.9");
	r[3] = R("a1", DAY0 + 1000, "198.51.100.2", "192.0.2.10");	/* duplicate */
	r[4] = R("z9", DAY0 + 24 * HOUR, "192.0.2.10", "198.51.100.1");	/* after the range */
	r[5] = R("a0", DAY0 + 1000, "192.0.2.10", "198.51.100.7");
	struct cache_cover cv = {DAY0, DAY0 + 24 * HOUR + 1, 1000, false, 6};
	assert_int_equal(cache_put_window(c, &q, r, 6, &cv, err), 0);
	/* sorted by (start, id) in place */
	assert_string_equal(r[0].id, "a0");
	assert_string_equal(r[1].id, "a1");
	assert_string_equal(r[2].id, "a1");
	assert_string_equal(r[3].id, "c3");
	assert_string_equal(r[4].id, "b2");
	assert_int_equal(count(c, &q), 4);	/* a1 once; z9 is outside */
	/* the same window again stores nothing new */
	assert_int_equal(cache_put_window(c, &q, r, 6, &cv, err), 0);
	assert_int_equal(count(c, &q), 4);
	struct cache_query all = q;
	all.end = DAY0 + 25 * HOUR;
	assert_int_equal(count(c, &all), 5);

	/* peer filters, both directions */
	struct cache_query qp = Q("192.0.2.10", "198.51.100.0/24", q.start, q.end);
	assert_int_equal(count(c, &qp), 3);
	qp = Q("192.0.2.10", "198.51.100.2", q.start, q.end);
	assert_int_equal(count(c, &qp), 1);	/* src side */
	qp = Q("192.0.2.10", "203.0.113.0/24", q.start, q.end);
	assert_int_equal(count(c, &qp), 1);	/* dst side */
	qp = Q("192.0.2.10", "0.0.0.0/0", q.start, q.end);
	assert_int_equal(count(c, &qp), 4);
	qp = Q("192.0.2.10", "::/0", q.start, q.end);
	assert_int_equal(count(c, &qp), 0);	/* families never mix */
	/* the subject is the key: another subject sees nothing */
	struct cache_query other = Q("198.51.100.1", NULL, q.start, q.end);
	assert_int_equal(count(c, &other), 0);
	/* a prefix subject and IPv6 */
	struct cache_query q6 = Q("2001:db8::/32", NULL, q.start, q.end);
	struct flow_rec r6 = R("v6", DAY0 + 5, "2001:db8::1", "2001:db8:1::2");
	assert_int_equal(cache_put_window(c, &q6, &r6, 1, NULL, err), 0);
	assert_int_equal(count(c, &q6), 1);
	q6 = Q("2001:db8::/32", "2001:db8:1::/48", q.start, q.end);
	assert_int_equal(count(c, &q6), 1);
	q6 = Q("2001:db8::/32", "2001:db8:2::/48", q.start, q.end);
	assert_int_equal(count(c, &q6), 0);

	/* the window with no records still records its coverage */
	struct cache_query qe = Q("192.0.2.99", NULL, DAY0, DAY0 + HOUR);
	struct cache_cover ce = {DAY0, DAY0 + HOUR, 1000, false, 0};
	struct cache_ivals miss = {0};
	assert_int_equal(cache_put_window(c, &qe, NULL, 0, &ce, err), 0);
	assert_int_equal(cache_missing(c, &qe, 2000, 60000, &miss, err), 0);
	assert_int_equal(miss.n, 0);
	/* bad coverage is refused before anything is written */
	ce.end = ce.start;
	assert_int_equal(cache_put_window(c, &qe, NULL, 0, &ce, err), -EINVAL);
	cache_ivals_free(&miss);
	cache_close(c);
	rmtree(dir);
}

static void test_put_window_atomic(void **state)
{
	(void)state;
	char *dir = tmpdir(), err[CACHE_ERRLEN] = "";
	struct cache *c = open_ok(dir);
	struct cache_query q = Q("192.0.2.10", NULL, DAY0, DAY0 + HOUR);
	struct cache_ivals miss = {0};
	struct flow_rec r[3];

	r[0] = R("a1", DAY0 + 1, "192.0.2.10", "198.51.100.1");
	r[1] = R("", DAY0 + 2, "192.0.2.10", "198.51.100.1");	/* the schema refuses it */
	r[2] = R("c3", DAY0 + 3, "192.0.2.10", "198.51.100.1");
	struct cache_cover cv = {DAY0, DAY0 + HOUR, 1000, false, 3};
	assert_int_equal(cache_put_window(c, &q, r, 3, &cv, err), -EINVAL);
	assert_non_null(strstr(err, "insert flow"));
	/* neither records nor coverage */
	assert_int_equal(count(c, &q), 0);
	assert_int_equal(cache_missing(c, &q, 1000, 60000, &miss, err), 0);
	expect_ivals(&miss, (int64_t[]){DAY0, DAY0 + HOUR}, 1);
	/* and the connection is usable afterwards */
	snprintf(r[1].id, sizeof(r[1].id), "b2");
	assert_int_equal(cache_put_window(c, &q, r, 3, &cv, err), 0);
	assert_int_equal(count(c, &q), 3);
	assert_int_equal(cache_missing(c, &q, 1000, 60000, &miss, err), 0);
	assert_int_equal(miss.n, 0);

	/* a writer that holds the lock for longer than busy_timeout: -EBUSY, nothing half-written */
	sqlite3 *db;
	assert_int_equal(sqlite3_open(cache_path(c), &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_busy_timeout(db, 0);
	struct cache_query q2 = Q("192.0.2.11", NULL, DAY0, DAY0 + HOUR);
	/* shorten the wait: this test must not take 5 s */
	sqlite3_busy_timeout(c->db, 50);
	assert_int_equal(cache_put_window(c, &q2, r, 3, &cv, err), -EBUSY);
	assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(count(c, &q2), 0);
	assert_int_equal(cache_put_window(c, &q2, r, 3, &cv, err), 0);
	assert_int_equal(count(c, &q2), 3);
	cache_ivals_free(&miss);
	cache_close(c);
	rmtree(dir);
}

/* ---- coverage ------------------------------------------------------------------------------ */

static void test_missing_provisional(void **state)
{
	(void)state;
	char *dir = tmpdir(), err[CACHE_ERRLEN] = "";
	struct cache *c = open_ok(dir);
	struct cache_query q = Q("192.0.2.10", NULL, 0, 300);
	struct cache_ivals miss = {0};
	struct cache_cover *cov;
	size_t n;
	const int64_t ttl = 60000, t0 = 1000000;

	struct cache_cover a = {0, 100, t0, false, 0}, b = {100, 200, t0, true, 0};
	assert_int_equal(cache_put_window(c, &q, NULL, 0, &a, err), 0);
	assert_int_equal(cache_put_window(c, &q, NULL, 0, &b, err), 0);
	/* young: the provisional row counts */
	assert_int_equal(cache_missing(c, &q, t0 + ttl - 1, ttl, &miss, err), 0);
	expect_ivals(&miss, (int64_t[]){200, 300}, 1);
	assert_int_equal(cache_coverage(c, &q, t0 + ttl - 1, ttl, &cov, &n, err), 0);
	assert_int_equal(n, 2);
	free(cov);
	/* aged out: it does not */
	assert_int_equal(cache_missing(c, &q, t0 + ttl, ttl, &miss, err), 0);
	expect_ivals(&miss, (int64_t[]){100, 300}, 1);
	assert_int_equal(cache_coverage(c, &q, t0 + ttl, ttl, &cov, &n, err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(cov[0].start, 0);
	assert_false(cov[0].provisional);
	free(cov);

	/* a final window over part of it replaces the provisional row */
	struct cache_cover f = {150, 250, t0 + 10, false, 5};
	assert_int_equal(cache_put_window(c, &q, NULL, 0, &f, err), 0);
	assert_int_equal(cache_coverage(c, &q, t0 + 11, ttl, &cov, &n, err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(cov[0].start, 0);
	assert_int_equal(cov[1].start, 150);
	assert_int_equal(cov[1].records, 5);
	free(cov);
	assert_int_equal(cache_missing(c, &q, t0 + 11, ttl, &miss, err), 0);
	expect_ivals(&miss, (int64_t[]){100, 150, 250, 300}, 2);
	/* a provisional window never replaces anything, and a final window
	 * only replaces provisional rows it overlaps */
	struct cache_cover p2 = {250, 280, t0, true, 0}, p3 = {290, 300, t0, true, 0};
	struct cache_cover f2 = {280, 290, t0, false, 0};
	assert_int_equal(cache_put_window(c, &q, NULL, 0, &p2, err), 0);
	assert_int_equal(cache_put_window(c, &q, NULL, 0, &p3, err), 0);
	assert_int_equal(cache_put_window(c, &q, NULL, 0, &f2, err), 0);
	assert_int_equal(cache_missing(c, &q, t0 + 1, ttl, &miss, err), 0);
	expect_ivals(&miss, (int64_t[]){100, 150}, 1);

	/* peers: (S, any) counts for (S, P); (S, P) does not count for (S, any)
	 * nor for (S, P'); and a final row of (S, P) leaves (S, any)'s
	 * provisional rows alone */
	struct cache_query qp = Q("192.0.2.10", "203.0.113.0/24", 0, 300);
	struct cache_query qp2 = Q("192.0.2.10", "198.51.100.0/24", 0, 300);
	struct cache_cover fp = {100, 150, t0, false, 0}, pa = {300, 400, t0, true, 0};
	struct cache_query wide = Q("192.0.2.10", NULL, 0, 400);
	assert_int_equal(cache_put_window(c, &wide, NULL, 0, &pa, err), 0);
	assert_int_equal(cache_put_window(c, &qp, NULL, 0, &fp, err), 0);
	assert_int_equal(cache_missing(c, &qp, t0 + 1, ttl, &miss, err), 0);
	assert_int_equal(miss.n, 0);
	assert_int_equal(cache_missing(c, &qp2, t0 + 1, ttl, &miss, err), 0);
	expect_ivals(&miss, (int64_t[]){100, 150}, 1);
	assert_int_equal(cache_missing(c, &q, t0 + 1, ttl, &miss, err), 0);
	expect_ivals(&miss, (int64_t[]){100, 150}, 1);
	struct cache_query qpw = Q("192.0.2.10", "203.0.113.0/24", 0, 400);
	struct cache_cover fpw = {300, 400, t0 + 5, false, 0};
	assert_int_equal(cache_put_window(c, &qpw, NULL, 0, &fpw, err), 0);
	assert_int_equal(cache_missing(c, &wide, t0 + 1, ttl, &miss, err), 0);
	expect_ivals(&miss, (int64_t[]){100, 150}, 1);	/* pa still there */
	/* pa aged out, and so did p2 and p3 */
	assert_int_equal(cache_missing(c, &wide, t0 + ttl, ttl, &miss, err), 0);
	expect_ivals(&miss, (int64_t[]){100, 150, 250, 280, 290, 400}, 3);
	cache_ivals_free(&miss);
	cache_close(c);
	rmtree(dir);
}

/* A snapshot's reports are rendered as of its making: coverage stamped
 * after as_of_ms, and coverage committed after the mark, are both left out.
 * The second matters when another download stamped a window before the
 * snapshot was made but committed it after (the soak saw a copied folder's
 * query.json change under it). */
static void test_coverage_as_of(void **state)
{
	(void)state;
	char *dir = tmpdir(), err[CACHE_ERRLEN] = "";
	struct cache *c = open_ok(dir);
	struct cache_query q = Q("192.0.2.10", NULL, 0, 300);
	struct cache_cover *cov;
	size_t n;
	int64_t mark = -1, mark2 = -1;
	const int64_t ttl = 60000, made = 5000;

	assert_int_equal(cache_coverage_mark(c, &mark, err), 0);
	assert_int_equal(mark, 0);
	struct cache_cover a = {0, 100, 1000, false, 0};
	assert_int_equal(cache_put_window(c, &q, NULL, 0, &a, err), 0);
	assert_int_equal(cache_coverage_mark(c, &mark, err), 0);
	assert_true(mark > 0);
	/* stamped before the snapshot, committed after its mark */
	struct cache_cover late = {100, 200, made - 1, false, 0};
	/* stamped after the snapshot */
	struct cache_cover after = {200, 300, made + 1, false, 0};
	assert_int_equal(cache_put_window(c, &q, NULL, 0, &late, err), 0);
	assert_int_equal(cache_put_window(c, &q, NULL, 0, &after, err), 0);
	assert_int_equal(cache_coverage_mark(c, &mark2, err), 0);
	assert_true(mark2 > mark);

	struct cache_query sq = q;
	sq.as_of_ms = made;
	sq.as_of_seq = mark;
	assert_int_equal(cache_coverage(c, &sq, made + 10, ttl, &cov, &n, err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(cov[0].start, 0);
	free(cov);
	/* with the later mark, the time still leaves 'after' out */
	sq.as_of_seq = mark2;
	assert_int_equal(cache_coverage(c, &sq, made + 10, ttl, &cov, &n, err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(cov[1].start, 100);
	free(cov);
	/* not as of anything: all three */
	assert_int_equal(cache_coverage(c, &q, made + 10, ttl, &cov, &n, err), 0);
	assert_int_equal(n, 3);
	free(cov);
	cache_close(c);
	rmtree(dir);
}

/* Which days the cache holds whole (a day folder's time, issue 13 item
 * 8c): five days of 100 ms.  Day 0 in two windows, the newer fetch wins;
 * day 1 with a hole; day 2 and half of day 3 in one window that spans
 * them (day 3 not whole); day 4 whole under a query with a peer, a window
 * of another peer not counted, one of any peer counted; a provisional
 * row counts while young. */
static void test_days_fetched(void **state)
{
	(void)state;
	char *dir = tmpdir(), err[CACHE_ERRLEN] = "";
	struct cache *c = open_ok(dir);
	struct cache_query q = Q("192.0.2.10", NULL, 0, 500);
	struct cache_query qp = Q("192.0.2.10", "198.51.100.7", 0, 500);
	struct cache_query qo = Q("192.0.2.10", "198.51.100.8", 0, 500);
	const int64_t bounds[6] = {0, 100, 200, 300, 400, 500}, ttl = 60000;
	int64_t f[5];

	struct cache_cover w[] = {
		{0, 40, 1000, false, 0}, {40, 100, 2000, false, 0},	/* day 0 */
		{100, 150, 3000, false, 0}, {160, 200, 3000, false, 0},	/* day 1: a hole */
		{200, 350, 4000, false, 0},				/* days 2, 3 */
	};
	for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++)
		assert_int_equal(cache_put_window(c, &q, NULL, 0, &w[i], err), 0);
	struct cache_cover other = {350, 400, 9000, false, 0};
	assert_int_equal(cache_put_window(c, &qo, NULL, 0, &other, err), 0);
	struct cache_cover pa = {400, 450, 5000, false, 0}, pb = {450, 500, 6000, true, 0};
	assert_int_equal(cache_put_window(c, &qp, NULL, 0, &pa, err), 0);
	assert_int_equal(cache_put_window(c, &q, NULL, 0, &pb, err), 0);

	assert_int_equal(cache_days_fetched(c, &q, bounds, 5, 6000, ttl, f, err), 0);
	assert_int_equal(f[0], 2000);
	assert_int_equal(f[1], 0);
	assert_int_equal(f[2], 4000);
	assert_int_equal(f[3], 0);	/* [350, 400) only under another peer */
	assert_int_equal(f[4], 0);	/* [400, 450) only under a peer */
	assert_int_equal(cache_days_fetched(c, &qp, bounds, 5, 6000, ttl, f, err), 0);
	assert_int_equal(f[0], 2000);
	assert_int_equal(f[3], 0);
	assert_int_equal(f[4], 6000);	/* its own and any peer's */
	/* the provisional row old: day 4 no longer whole */
	assert_int_equal(cache_days_fetched(c, &qp, bounds + 4, 1, 6000 + ttl, ttl, f, err), 0);
	assert_int_equal(f[0], 0);
	/* bad days */
	const int64_t back[3] = {0, 100, 100};
	assert_int_equal(cache_days_fetched(c, &q, back, 2, 6000, ttl, f, err), -EINVAL);
	assert_int_equal(cache_days_fetched(c, &q, bounds, 0, 6000, ttl, f, err), -EINVAL);
	cache_close(c);
	rmtree(dir);
}

/* ---- gaps ------------------------------------------------------------------------------------ */

static void test_gaps(void **state)
{
	(void)state;
	char *dir = tmpdir(), err[CACHE_ERRLEN] = "";
	struct cache *c = open_ok(dir);
	struct cache_query q = Q("192.0.2.10", NULL, 0, 1000);
	struct cache_query qp = Q("192.0.2.10", "198.51.100.0/24", 0, 1000);
	struct cache_gap g, *v;
	size_t n;

	memset(&g, 0, sizeof(g));
	g.start = 100;
	g.end = 101;
	snprintf(g.peer, sizeof(g.peer), "198.51.100.7");
	g.seen = 10000;
	snprintf(g.reason, sizeof(g.reason), "saturated at 1 ms and a /32 peer");
	assert_int_equal(cache_put_gap(c, &q, &g, err), 0);
	g.start = 500;
	g.end = 600;
	assert_int_equal(cache_put_gap(c, &q, &g, err), 0);
	g.start = 700;
	g.end = 800;
	assert_int_equal(cache_put_gap(c, &qp, &g, err), 0);

	assert_int_equal(cache_gaps(c, &q, &v, &n, err), 0);
	assert_int_equal(n, 2);
	assert_int_equal(v[0].start, 100);
	assert_int_equal(v[0].end, 101);
	assert_string_equal(v[0].peer, "198.51.100.7");
	assert_int_equal(v[0].seen, 10000);
	assert_string_equal(v[0].reason, "saturated at 1 ms and a /32 peer");
	assert_int_equal(v[1].start, 500);
	free(v);
	/* the range selects by overlap */
	struct cache_query part = Q("192.0.2.10", NULL, 101, 500);
	assert_int_equal(cache_gaps(c, &part, &v, &n, err), 0);
	assert_int_equal(n, 0);
	free(v);
	part.end = 501;
	assert_int_equal(cache_gaps(c, &part, &v, &n, err), 0);
	assert_int_equal(n, 1);
	free(v);
	/* the query with a peer has its own */
	assert_int_equal(cache_gaps(c, &qp, &v, &n, err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(v[0].start, 700);
	free(v);
	/* a gap that final coverage spans since is closed: not reported */
	struct cache_cover cv = {0, 200, 5, false, 0};
	assert_int_equal(cache_put_window(c, &q, NULL, 0, &cv, err), 0);
	assert_int_equal(cache_gaps(c, &q, &v, &n, err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(v[0].start, 500);
	free(v);
	/* clearing forgets the query's gaps in its range only */
	g.start = 900;
	g.end = 950;
	assert_int_equal(cache_put_gap(c, &q, &g, err), 0);
	struct cache_query clear = Q("192.0.2.10", NULL, 0, 550);
	assert_int_equal(cache_clear_gaps(c, &clear, err), 0);
	assert_int_equal(cache_gaps(c, &q, &v, &n, err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(v[0].start, 900);
	free(v);
	assert_int_equal(cache_gaps(c, &qp, &v, &n, err), 0);
	assert_int_equal(n, 1);
	free(v);
	g.end = g.start;
	assert_int_equal(cache_put_gap(c, &q, &g, err), -EINVAL);
	cache_close(c);
	rmtree(dir);
}

/* ---- the audit ----------------------------------------------------------------------------------- */

static void expect_audit(struct cache *c, const struct cache_query *q, int64_t now,
			 const int64_t *holes, size_t nholes, size_t ngaps)
{
	struct cache_audit a;
	char err[CACHE_ERRLEN] = "";
	assert_int_equal(cache_audit(c, q, now, 60000, &a, err), 0);
	expect_ivals(&a.holes, holes, nholes);
	assert_int_equal(a.ngaps, ngaps);
	cache_audit_free(&a);
}

/* The audit reads coverage and gaps only: a range is accounted for when
 * every instant is covered or inside a recorded gap of the same query. */
static void test_audit(void **state)
{
	(void)state;
	char *dir = tmpdir(), err[CACHE_ERRLEN] = "";
	struct cache *c = open_ok(dir);
	struct cache_query q = Q("192.0.2.10", NULL, 0, 300);
	struct cache_query qp = Q("192.0.2.10", "198.51.100.0/24", 0, 300);
	const int64_t t0 = 1000000;

	expect_audit(c, &q, t0, (int64_t[]){0, 300}, 1, 0);
	struct cache_cover a = {0, 100, t0, false, 0}, b = {150, 300, t0, false, 0};
	assert_int_equal(cache_put_window(c, &q, NULL, 0, &a, err), 0);
	assert_int_equal(cache_put_window(c, &q, NULL, 0, &b, err), 0);
	expect_audit(c, &q, t0, (int64_t[]){100, 150}, 1, 0);
	/* (S, any) counts for (S, P); a sub-range is judged on its own */
	expect_audit(c, &qp, t0, (int64_t[]){100, 150}, 1, 0);
	struct cache_query sub = Q("192.0.2.10", NULL, 160, 300);
	expect_audit(c, &sub, t0, NULL, 0, 0);
	/* a gap of another query accounts for nothing here */
	struct cache_gap g = {.start = 100, .end = 150, .peer = "198.51.100.7", .seen = 9};
	assert_int_equal(cache_put_gap(c, &qp, &g, err), 0);
	expect_audit(c, &q, t0, (int64_t[]){100, 150}, 1, 0);
	expect_audit(c, &qp, t0, NULL, 0, 1);
	/* part of the hole as a gap of q: the rest is still a hole */
	g.end = 120;
	assert_int_equal(cache_put_gap(c, &q, &g, err), 0);
	expect_audit(c, &q, t0, (int64_t[]){120, 150}, 1, 1);
	/* closed since: a gap spanned by coverage is not reported */
	struct cache_cover fill = {100, 150, t0, false, 0};
	assert_int_equal(cache_put_window(c, &q, NULL, 0, &fill, err), 0);
	expect_audit(c, &q, t0, NULL, 0, 0);
	/* a provisional row counts while young, not after */
	struct cache_query wide = Q("192.0.2.10", NULL, 0, 400);
	struct cache_cover p = {300, 400, t0, true, 0};
	assert_int_equal(cache_put_window(c, &wide, NULL, 0, &p, err), 0);
	expect_audit(c, &wide, t0 + 59999, NULL, 0, 0);
	expect_audit(c, &wide, t0 + 60000, (int64_t[]){300, 400}, 1, 0);
	/* as of a mark: rows committed after it do not count */
	struct cache_query asof = wide;
	int64_t mark;
	assert_int_equal(cache_coverage_mark(c, &mark, err), 0);
	struct cache_cover late = {300, 400, t0 + 1, false, 0};
	assert_int_equal(cache_put_window(c, &wide, NULL, 0, &late, err), 0);
	asof.as_of_ms = t0 + 10;
	asof.as_of_seq = mark;
	expect_audit(c, &asof, t0 + 60000, (int64_t[]){300, 400}, 1, 0);
	expect_audit(c, &wide, t0 + 60000, NULL, 0, 0);
	struct cache_query bad = Q("192.0.2.10", NULL, 10, 5);
	struct cache_audit au;
	assert_int_equal(cache_audit(c, &bad, t0, 0, &au, err), -EINVAL);
	cache_close(c);
	rmtree(dir);
}

/* The audit against a bitmap of milliseconds over random stores: holes
 * are exactly the instants neither covered nor in a gap of the query, and
 * the gaps reported are those with an uncovered instant.  The seed is
 * printed on failure. */
static void test_audit_random(void **state)
{
	(void)state;
	char *dir = tmpdir(), err[CACHE_ERRLEN] = "";
	struct cache *c = open_ok(dir);
	uint64_t rng = 0x9e3779b97f4a7c15ULL;
	enum { SPAN = 400 };

	for (int round = 0; round < 300; round++) {
		char subject[32];
		uint8_t cov[SPAN] = {0}, gap[SPAN] = {0};
		size_t want_gaps = 0;
		snprintf(subject, sizeof(subject), "10.%d.%d.1", round / 250, round % 250);
		struct cache_query q = Q(subject, NULL, 0, SPAN);
		int rows = (int)(rng % 12);
		for (int i = 0; i < rows; i++) {
			rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
			int64_t s = (int64_t)(rng % (SPAN + 40)) - 20, e = s + 1 + (int64_t)((rng >> 20) % 150);
			bool is_gap = (rng >> 40) % 4 == 0;
			if (is_gap) {
				struct cache_gap g = {.start = s, .end = e, .peer = "1.2.3.4", .seen = 1};
				assert_int_equal(cache_put_gap(c, &q, &g, err), 0);
			} else {
				struct cache_cover cv = {s, e, 1, false, 0};
				assert_int_equal(cache_put_window(c, &q, NULL, 0, &cv, err), 0);
			}
			for (int64_t t = s; t < e; t++)
				if (t >= 0 && t < SPAN)
					(is_gap ? gap : cov)[t] = 1;
		}
		/* the gaps to report, from the store's own list of them */
		struct cache_gap *gv;
		size_t ng;
		assert_int_equal(cache_gaps(c, &q, &gv, &ng, err), 0);
		for (size_t i = 0; i < ng; i++) {
			bool open = false;
			for (int64_t t = gv[i].start; t < gv[i].end; t++)
				open |= t >= 0 && t < SPAN && !cov[t];
			want_gaps += open;
		}
		free(gv);
		struct cache_audit a;
		assert_int_equal(cache_audit(c, &q, 2, 0, &a, err), 0);
		size_t k = 0;
		for (int64_t t = 0; t < SPAN; t++) {
			bool hole = !cov[t] && !gap[t];
			while (k < a.holes.n && a.holes.v[k].end <= t)
				k++;
			bool said = k < a.holes.n && a.holes.v[k].start <= t;
			if (hole != said)
				fail_msg("round %d: instant %lld is %s but the audit says %s", round,
					 (long long)t, hole ? "a hole" : "accounted for",
					 said ? "a hole" : "accounted for");
		}
		if (a.ngaps != want_gaps)
			fail_msg("round %d: %zu gaps reported, %zu open", round, a.ngaps, want_gaps);
		cache_audit_free(&a);
	}
	cache_close(c);
	rmtree(dir);
}

/* ---- lookup tables ----------------------------------------------------------------------------- */

static void test_lookup(void **state)
{
	(void)state;
	char *dir = tmpdir(), err[CACHE_ERRLEN] = "";
	struct cache *c = open_ok(dir);
	struct cache_lookup rows[3];
	int64_t age = -1;

	memset(rows, 0, sizeof(rows));
	for (int t = 0; t < CACHE_NTABLES; t++) {
		assert_int_equal(cache_lookup_age(c, (enum cache_table)t, &age, err), 0);
		assert_int_equal(age, 0);
	}
	rows[0].key = 130;
	snprintf(rows[0].name, sizeof(rows[0].name), "HTTPS");
	rows[1].key = 160;
	snprintf(rows[1].name, sizeof(rows[1].name), "SIP, \"VoIP\"");
	assert_int_equal(cache_put_lookup(c, CACHE_APPS, rows, 2, 12345, err), 0);
	assert_int_equal(cache_lookup_age(c, CACHE_APPS, &age, err), 0);
	assert_int_equal(age, 12345);
	assert_int_equal(cache_lookup_age(c, CACHE_GROUPS, &age, err), 0);
	assert_int_equal(age, 0);
	/* a replacement is whole: the old rows are gone */
	rows[0].key = 1;
	assert_int_equal(cache_put_lookup(c, CACHE_APPS, rows, 1, 22222, err), 0);
	assert_int_equal(cache_lookup_age(c, CACHE_APPS, &age, err), 0);
	assert_int_equal(age, 22222);
	sqlite3 *db;
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_open(cache_path(c), &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*), min(key) FROM lookup"
					    " WHERE tbl=0", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 1);
	assert_int_equal(sqlite3_column_int(st, 1), 1);
	sqlite3_finalize(st);
	sqlite3_close(db);
	/* interfaces are keyed by (exporter, ifIndex) */
	rows[0].key = 2;
	rows[0].key2 = 514;
	rows[1].key = 2;
	rows[1].key2 = 515;
	rows[2].key = 3;
	rows[2].key2 = 514;
	assert_int_equal(cache_put_lookup(c, CACHE_IFS, rows, 3, 1, err), 0);
	assert_int_equal(cache_put_lookup(c, CACHE_NTABLES, rows, 1, 1, err), -EINVAL);
	assert_int_equal(cache_lookup_age(c, CACHE_NTABLES, &age, err), -EINVAL);
	cache_close(c);
	rmtree(dir);
}

/* ---- the plan the renderers rely on --------------------------------------------------------------- */

static void expect_plan_without_sort(sqlite3 *db, const char *sql)
{
	char buf[2048];
	sqlite3_stmt *st;
	bool pk = false;

	snprintf(buf, sizeof(buf), "EXPLAIN QUERY PLAN %s", sql);
	assert_int_equal(sqlite3_prepare_v2(db, buf, -1, &st, NULL), SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *d = (const char *)sqlite3_column_text(st, 3);
		if (strstr(d, "TEMP B-TREE"))
			fail_msg("the plan sorts: %s", d);
		if (strstr(d, "PRIMARY KEY"))
			pk = true;
	}
	sqlite3_finalize(st);
	assert_true(pk);
}

static void test_query_plan(void **state)
{
	(void)state;
	char *dir = tmpdir();
	struct cache *c = open_ok(dir);
	sqlite3 *db;

	assert_int_equal(sqlite3_open(cache_path(c), &db), SQLITE_OK);
	expect_plan_without_sort(db, CACHE_SQL_FLOWS);
	expect_plan_without_sort(db, CACHE_SQL_FLOWS_PEER);
	sqlite3_close(db);
	cache_close(c);
	rmtree(dir);
}

/* ---- every field survives the store --------------------------------------------------------------- */

/* The row st is on, decoded, is the record want, field by field (the
 * struct has padding). */
static void expect_row(sqlite3_stmt *st, const struct flow_rec *want)
{
	struct flow_rec out;

	memset(&out, 0x5a, sizeof(out));
	cache_row_decode(st, &out);
	assert_string_equal(out.id, want->id);
	assert_int_equal(out.start_ms, want->start_ms);
	assert_int_equal(out.end_ms, want->end_ms);
	assert_memory_equal(out.src, want->src, 16);
	assert_memory_equal(out.dst, want->dst, 16);
	assert_int_equal(out.sport, want->sport);
	assert_int_equal(out.dport, want->dport);
	assert_int_equal(out.proto, want->proto);
	assert_int_equal(out.tcp_flags, want->tcp_flags);
	assert_int_equal(out.icmp_type, want->icmp_type);
	assert_int_equal(out.icmp_code, want->icmp_code);
	assert_int_equal(out.pkts, want->pkts);
	assert_int_equal(out.bytes, want->bytes);
	assert_int_equal(out.in_if, want->in_if);
	assert_int_equal(out.out_if, want->out_if);
	assert_int_equal(out.exporter, want->exporter);
	assert_int_equal(out.app, want->app);
	assert_int_equal(out.src_as, want->src_as);
	assert_int_equal(out.dst_as, want->dst_as);
	assert_int_equal(out.sampling, want->sampling);
	assert_int_equal(out.nsrc_groups, want->nsrc_groups);
	assert_int_equal(out.ndst_groups, want->ndst_groups);
	for (int k = 0; k < want->nsrc_groups; k++)
		assert_int_equal(out.src_groups[k], want->src_groups[k]);
	for (int k = 0; k < want->ndst_groups; k++)
		assert_int_equal(out.dst_groups[k], want->dst_groups[k]);
	assert_string_equal(out.community_id, want->community_id);
	assert_string_equal(out.extra, want->extra);
}

/* xorshift64 for the random records below. */
static uint64_t next_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* A random value, unknown (-1) one time in five. */
static int64_t rand_opt(uint64_t *s, uint64_t range)
{
	uint64_t v = next_rand(s);

	return v % 5 == 0 ? -1 : (int64_t)((v >> 8) % range);
}

/* Record i of a random window: every field random, unknowns included. */
static struct flow_rec rand_rec(uint64_t *s, int i)
{
	char id[24], src[24], dst[24];

	snprintf(id, sizeof(id), "r%d-%llx", i, (unsigned long long)(next_rand(s) % 100000));
	snprintf(src, sizeof(src), "192.0.2.%d", (int)(next_rand(s) % 256));
	snprintf(dst, sizeof(dst), "198.51.100.%d", (int)(next_rand(s) % 256));
	struct flow_rec r = R(id, DAY0 + (int64_t)(next_rand(s) % HOUR), src, dst);
	r.end_ms = r.start_ms + rand_opt(s, 100000) + 1;
	r.sport = (int32_t)rand_opt(s, 65536);
	r.dport = (int32_t)rand_opt(s, 65536);
	r.proto = (int32_t)rand_opt(s, 256);
	r.tcp_flags = (int32_t)rand_opt(s, 256);
	r.icmp_type = (int32_t)rand_opt(s, 256);
	r.icmp_code = (int32_t)rand_opt(s, 256);
	r.pkts = rand_opt(s, 1000000);
	r.bytes = rand_opt(s, UINT64_C(1) << 40);
	r.in_if = rand_opt(s, 100000);
	r.out_if = rand_opt(s, 100000);
	r.exporter = rand_opt(s, 50);
	r.app = rand_opt(s, 5000);
	r.src_as = rand_opt(s, UINT64_C(4294967296));
	r.dst_as = rand_opt(s, UINT64_C(4294967296));
	r.sampling = rand_opt(s, 10000);
	r.nsrc_groups = (uint8_t)(next_rand(s) % 4);
	r.ndst_groups = (uint8_t)(next_rand(s) % (CACHE_GROUPS_MAX + 1));
	for (int k = 0; k < r.nsrc_groups; k++)
		r.src_groups[k] = (uint32_t)next_rand(s);
	for (int k = 0; k < r.ndst_groups; k++)
		r.dst_groups[k] = (uint32_t)next_rand(s);
	if (next_rand(s) % 3)
		snprintf(r.community_id, sizeof(r.community_id), "1:%llx=",
			 (unsigned long long)next_rand(s));
	if (next_rand(s) % 4 == 0)
		snprintf(r.extra, sizeof(r.extra), "{\"k\":%llu}", (unsigned long long)next_rand(s));
	return r;
}

/*
 * Windows of random records, larger than the store's batch of one
 * statement (STORE_BATCH rows) and not a multiple of it, each stored and
 * read back field by field, every record once: a window repeating part of
 * another (a split child's answer) and records repeated inside one window
 * add nothing.  A record the schema refuses in the middle of a batch fails
 * the window and names the record, and nothing of the window is stored.
 */
static void test_put_window_random(void **state)
{
	(void)state;
	char *dir = tmpdir(), err[CACHE_ERRLEN] = "";
	struct cache *c = open_ok(dir);
	struct cache_query q = Q("192.0.2.0/24", NULL, DAY0, DAY0 + HOUR);
	enum { N = 1500, DUPS = 40 };
	struct flow_rec *in = calloc(N + DUPS, sizeof(*in)), *keep = calloc(N, sizeof(*in));
	uint64_t rng = 0x2545f4914f6cdd1dULL;
	sqlite3_stmt *st;

	assert_non_null(in);
	assert_non_null(keep);
	for (int i = 0; i < N; i++)
		in[i] = rand_rec(&rng, i);
	memcpy(keep, in, N * sizeof(*in));
	for (int i = 0; i < DUPS; i++)		/* repeated inside the window */
		in[N + i] = in[next_rand(&rng) % N];
	assert_int_equal(cache_put_window(c, &q, in, 700 + DUPS, NULL, err), 0);
	memcpy(in, keep + 300, 1000 * sizeof(*in));	/* overlaps the first */
	assert_int_equal(cache_put_window(c, &q, in, 1000, NULL, err), 0);
	memcpy(in, keep + 1000, (N - 1000) * sizeof(*in));
	assert_int_equal(cache_put_window(c, &q, in, N - 1000, NULL, err), 0);

	qsort(keep, N, sizeof(*keep), cache_rec_cmp);
	assert_int_equal(count(c, &q), N);
	assert_int_equal(sqlite3_prepare_v2(c->db, CACHE_SQL_FLOWS, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(cache_bind_query(st, &q, "192.0.2.0/24"), SQLITE_OK);
	for (int i = 0; i < N; i++) {
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		expect_row(st, &keep[i]);
	}
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);

	/* a refused record inside a batch: nothing of its window, and it is named */
	struct cache_query q2 = Q("192.0.2.0/24", NULL, DAY0 + HOUR, DAY0 + 2 * HOUR);
	for (int i = 0; i < 600; i++) {
		in[i] = rand_rec(&rng, i);
		in[i].start_ms = DAY0 + HOUR + i;
	}
	in[345].id[0] = '\0';
	struct cache_cover cv = {DAY0 + HOUR, DAY0 + 2 * HOUR, 1000, false, 600};
	assert_int_equal(cache_put_window(c, &q2, in, 600, &cv, err), -EINVAL);
	assert_non_null(strstr(err, "(record with an empty id)"));
	assert_int_equal(count(c, &q2), 0);
	struct cache_ivals miss = {0};
	assert_int_equal(cache_missing(c, &q2, 1000, 60000, &miss, err), 0);
	expect_ivals(&miss, (int64_t[]){DAY0 + HOUR, DAY0 + 2 * HOUR}, 1);
	cache_ivals_free(&miss);
	snprintf(in[345].id, sizeof(in[345].id), "fixed");
	assert_int_equal(cache_put_window(c, &q2, in, 600, &cv, err), 0);
	assert_int_equal(count(c, &q2), 600);

	free(in);
	free(keep);
	cache_close(c);
	rmtree(dir);
}

static void test_roundtrip(void **state)
{
	(void)state;
	char *dir = tmpdir(), err[CACHE_ERRLEN] = "";
	struct cache *c = open_ok(dir);
	struct cache_query q = Q("2001:db8::1", NULL, DAY0, DAY0 + HOUR);
	struct flow_rec in[2];
	sqlite3_stmt *st;

	in[0] = R("ff01", DAY0 + 7, "2001:db8::1", "2001:db8::2");
	in[0].sport = 0;
	in[0].proto = 58;
	in[0].tcp_flags = -1;
	in[0].icmp_type = 128;
	in[0].icmp_code = 0;
	in[0].pkts = INT64_MAX;
	in[0].bytes = 0;
	in[0].in_if = 514;
	in[0].out_if = 0;
	in[0].exporter = 2;
	in[0].app = 160;
	in[0].src_as = 4200000000LL;
	in[0].dst_as = 0;
	in[0].sampling = 1000;
	in[0].nsrc_groups = 3;
	in[0].src_groups[0] = 12;
	in[0].src_groups[1] = 4294967295u;
	in[0].src_groups[2] = 0;
	snprintf(in[0].community_id, sizeof(in[0].community_id), "1:LQU9qZlK+B5F3KDmev6m5PMibrg=");
	in[1] = R("ff02", DAY0 + 8, "2001:db8::2", "2001:db8::1");
	in[1].sport = in[1].dport = in[1].proto = in[1].tcp_flags = -1;
	/* the longest extra: a JSON text of CACHE_EXTRA_LEN - 1 bytes */
	memset(in[0].extra, 'x', sizeof(in[0].extra) - 1);
	memcpy(in[0].extra, "{\"tlsVersion\":\"", 15);
	memcpy(in[0].extra + sizeof(in[0].extra) - 3, "\"}", 3);
	in[1].pkts = in[1].bytes = -1;
	memset(in[1].id, 'f', CACHE_ID_MAX);	/* the longest id */
	in[1].id[CACHE_ID_MAX] = '\0';
	assert_int_equal(cache_put_window(c, &q, in, 2, NULL, err), 0);

	char subject[CACHE_KEY_LEN], peer[CACHE_KEY_LEN];
	cache_query_keys(&q, subject, peer);
	assert_string_equal(subject, "2001:db8::1");
	assert_string_equal(peer, "");
	assert_int_equal(sqlite3_prepare_v2(c->db, CACHE_SQL_FLOWS, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(cache_bind_query(st, &q, subject), SQLITE_OK);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		expect_row(st, &in[i]);
	}
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);

	/* unknown numbers are NULL in the table, not -1 */
	assert_int_equal(sqlite3_prepare_v2(c->db, "SELECT count(*) FROM flows WHERE"
					    " sport IS NULL AND pkts IS NULL AND app IS NULL"
					    " AND src_groups IS NULL AND community_id IS NULL"
					    " AND extra IS NULL",
					    -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 1);
	sqlite3_finalize(st);

	/* flows.sqlite: extra as stored, NULL when empty, after every other column */
	char out_path[700], buf[512];
	sqlite3 *db;
	snprintf(out_path, sizeof(out_path), "%s/flows.sqlite", dir);
	assert_int_equal(cache_render(c, &q, CACHE_SQLITE, NULL, out_path, NULL, 0, NULL, err), 0);
	assert_int_equal(sqlite3_open(out_path, &db), SQLITE_OK);
	sql_text(db, "SELECT name FROM pragma_table_info('flows') ORDER BY cid DESC LIMIT 1", buf,
		 sizeof(buf));
	assert_string_equal(buf, "extra");
	sql_text(db, "SELECT extra FROM flows WHERE flowId='ff01'", buf, sizeof(buf));
	assert_string_equal(buf, in[0].extra);
	sql_text(db, "SELECT count(*) FROM flows WHERE extra IS NULL", buf, sizeof(buf));
	assert_string_equal(buf, "1");
	sql_text(db, "SELECT json_extract(extra, '$.tlsVersion') IS NOT NULL FROM flows"
		 " WHERE flowId='ff01'", buf, sizeof(buf));
	assert_string_equal(buf, "1");
	sqlite3_close(db);
	cache_close(c);
	rmtree(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prefix_parse),
		cmocka_unit_test(test_prefix_contains_range),
		cmocka_unit_test(test_ivals_add),
		cmocka_unit_test(test_ivals_subtract),
		cmocka_unit_test(test_open_modes),
		cmocka_unit_test(test_open_refuses_shared_places),
		cmocka_unit_test(test_identity),
		cmocka_unit_test(test_schema_versions),
		cmocka_unit_test(test_migrate_v1),
		cmocka_unit_test(test_page_size),
		cmocka_unit_test(test_put_window_random),
		cmocka_unit_test(test_put_window),
		cmocka_unit_test(test_put_window_atomic),
		cmocka_unit_test(test_missing_provisional),
		cmocka_unit_test(test_coverage_as_of),
		cmocka_unit_test(test_days_fetched),
		cmocka_unit_test(test_gaps),
		cmocka_unit_test(test_audit),
		cmocka_unit_test(test_audit_random),
		cmocka_unit_test(test_lookup),
		cmocka_unit_test(test_query_plan),
		cmocka_unit_test(test_roundtrip),
	};
	return cmocka_run_group_tests_name("cache", tests, NULL, NULL);
}
