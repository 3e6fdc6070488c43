/*
 * guard.c - what the two fronts (flowfs, flowfetch) check before they use
 * a secret: that the token file is private, that the process cannot be
 * dumped or traced, that the URL carries no credentials, and whether a
 * token would cross the network in clear text (issue 12, items 3 and 4);
 * and the one reading of the token and of the cache directory that both
 * fronts call (issue 15), so that they cannot take them differently.
 */
#include "fetch.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

/* The owner first (another user's file is refused however private it
 * is), then the mode: any bit for group or others refuses it. */
int fetch_token_file_check(int fd, const char *path, char *err)
{
	struct stat st;

	if (fstat(fd, &st) != 0) {
		int e = errno;
		snprintf(err, FETCH_ERRLEN, "the token file %.300s: %s", path, strerror(e));
		return -e;
	}
	if (st.st_uid != geteuid()) {
		snprintf(err, FETCH_ERRLEN, "the token file %.300s belongs to uid %u, not to you "
			 "(uid %u): use a file of your own, chmod 600", path, (unsigned)st.st_uid,
			 (unsigned)geteuid());
		return -EPERM;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		snprintf(err, FETCH_ERRLEN, "the token file %.200s is open to group or others "
			 "(mode %04o): chmod 600 %.200s", path, (unsigned)(st.st_mode & 07777),
			 path);
		return -EPERM;
	}
	return 0;
}

/* PR_SET_DUMPABLE 0: it also makes /proc/PID's files root's, so the
 * user's other processes cannot read this one's memory or environment. */
int fetch_no_dump(char *err)
{
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
		int e = errno;
		snprintf(err, FETCH_ERRLEN, "cannot turn core dumps off: %s", strerror(e));
		return -e;
	}
	return 0;
}

/* The authority of url ("host:port", "[::1]:port", "user@host"), after the
 * scheme's "://": its start in *a and length in *n; -EINVAL when url has
 * no "://". */
static int guard_authority(const char *url, const char **a, size_t *n)
{
	const char *p = strstr(url, "://");

	if (!p)
		return -EINVAL;
	*a = p + 3;
	*n = strcspn(*a, "/?#");
	return 0;
}

/* Any '@' in the authority is user information (a password, a token as
 * the user name): refused, without repeating the URL in err. */
int fetch_url_check(const char *url, const char *token_opt, char *err)
{
	const char *a;
	size_t n;

	if (guard_authority(url, &a, &n) == 0 && memchr(a, '@', n)) {
		snprintf(err, FETCH_ERRLEN, "the URL holds a user name or password (before '@'), "
			 "which would show in the process list, /proc/mounts, the log and the "
			 "files: give the token (an SNA Manager's user:password) in a file with "
			 "%s, or in $FLOWFS_TOKEN", token_opt);
		return -EINVAL;
	}
	return 0;
}

/* Is the host of the authority a[0..n) this machine: 127.0.0.0/8, ::1
 * (also as ::ffff:127.x.y.z), localhost?  Anything else, a name that may
 * resolve to a loopback address included, is not. */
static bool guard_loopback(const char *a, size_t n)
{
	char h[256];
	struct in6_addr v6;
	struct in_addr v4;
	size_t len;

	if (n && a[0] == '[') {
		const char *end = memchr(a, ']', n);
		len = end ? (size_t)(end - a - 1) : 0;
		if (!end || len >= sizeof(h))
			return false;
		memcpy(h, a + 1, len);
		h[len] = '\0';
		if (inet_pton(AF_INET6, h, &v6) != 1)
			return false;
		return IN6_IS_ADDR_LOOPBACK(&v6) ||
		       (IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127);
	}
	len = strcspn(a, ":/?#");
	if (len > n)
		len = n;
	if (len >= sizeof(h))
		return false;
	memcpy(h, a, len);
	h[len] = '\0';
	if (inet_pton(AF_INET, h, &v4) == 1)
		return (ntohl(v4.s_addr) >> 24) == 127;
	return strcasecmp(h, "localhost") == 0 || strcasecmp(h, "localhost.") == 0;
}

/* Plain http:// to a host guard_loopback does not take for this machine:
 * true, with the warning naming the host. */
bool fetch_clear_text_warning(const char *url, const char *what, char *msg, size_t len)
{
	const char *a;
	size_t n;

	if (strncmp(url, "http://", 7) != 0 || guard_authority(url, &a, &n) != 0 || !n ||
	    guard_loopback(a, n))
		return false;
	snprintf(msg, len, "%s is sent over plain http:// to %.*s, which is not this machine: "
		 "anyone on the way can read it (use https://)", what, (int)(n > 200 ? 200 : n),
		 a);
	return true;
}

/* The file's first line, without its CR or LF (the token file's one
 * convention, README "Security"). */
static int token_file_read(const char *path, char *out, size_t len, char *err)
{
	FILE *f = fopen(path, "r");
	size_t n;
	int rc;

	if (!f) {
		rc = -errno;
		snprintf(err, FETCH_ERRLEN, "cannot read the token file %.300s: %s", path,
			 strerror(-rc));
		return rc;
	}
	rc = fetch_token_file_check(fileno(f), path, err);
	if (rc) {
		fclose(f);
		return rc;
	}
	n = fread(out, 1, len - 1, f);
	fclose(f);
	out[n] = '\0';
	out[strcspn(out, "\r\n")] = '\0';
	if (!out[0]) {
		snprintf(err, FETCH_ERRLEN, "the token file %.300s is empty", path);
		return -EINVAL;
	}
	if (strlen(out) > FETCH_TOKEN_MAX) {	/* out holds one byte more: never cut */
		explicit_bzero(out, len);
		snprintf(err, FETCH_ERRLEN, "the token in %.300s is longer than %d bytes (16 KiB), "
			 "the most accepted", path, FETCH_TOKEN_MAX);
		return -EINVAL;
	}
	return 0;
}

int fetch_token_read(const char *path, char *out, size_t len, char *err)
{
	const char *env = getenv("FLOWFS_TOKEN");

	out[0] = '\0';
	if (len < FETCH_TOKEN_MAX + 2) {
		snprintf(err, FETCH_ERRLEN, "no room for a token");
		return -EINVAL;
	}
	if (path)
		return token_file_read(path, out, len, err);
	if (!env)
		return 0;
	if (strlen(env) > FETCH_TOKEN_MAX) {
		snprintf(err, FETCH_ERRLEN, "FLOWFS_TOKEN is longer than %d bytes (16 KiB), the "
			 "most accepted", FETCH_TOKEN_MAX);
		return -EINVAL;
	}
	snprintf(out, len, "%s", env);
	return 0;
}

int fetch_cache_dir(const char *given, char *out, size_t len, char *err)
{
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	char dir[PATH_MAX], cwd[PATH_MAX];
	int n;

	if (given && given[0])
		n = snprintf(dir, sizeof(dir), "%s", given);
	else if (xdg && xdg[0])
		n = snprintf(dir, sizeof(dir), "%s/flowfs", xdg);
	else if (home && home[0])
		n = snprintf(dir, sizeof(dir), "%s/.cache/flowfs", home);
	else {
		snprintf(err, FETCH_ERRLEN, "no cache directory: give one (-o cache=, --cache), or "
			 "set XDG_CACHE_HOME or HOME");
		return -ENOENT;
	}
	if (n < 0 || (size_t)n >= sizeof(dir))
		goto too_long;
	if (dir[0] == '/') {
		n = snprintf(out, len, "%s", dir);
	} else {
		if (!getcwd(cwd, sizeof(cwd))) {
			int e = errno;
			snprintf(err, FETCH_ERRLEN, "cannot resolve the cache directory %.300s: %s", dir,
				 strerror(e));
			return -e;
		}
		n = snprintf(out, len, "%s/%s", strcmp(cwd, "/") ? cwd : "", dir);
	}
	if (n >= 0 && (size_t)n < len)
		return 0;
too_long:
	snprintf(err, FETCH_ERRLEN, "the cache directory's path is too long");
	return -ENAMETOOLONG;
}
