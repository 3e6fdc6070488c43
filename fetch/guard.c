/*
 * guard.c - what the two fronts (flowfs, flowfetch) check before they use
 * a secret: that the token file is private, that the process cannot be
 * dumped or traced, that the URL carries no credentials, and whether a
 * token would cross the network in clear text (issue 12, items 3 and 4).
 */
#include "fetch.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

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

int fetch_no_dump(char *err)
{
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) {
		int e = errno;
		snprintf(err, FETCH_ERRLEN, "cannot turn core dumps off: %s", strerror(e));
		return -e;
	}
	return 0;
}
