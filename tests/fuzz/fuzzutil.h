/*
 * fuzzutil.h - what the libFuzzer targets of tests/fuzz share: a property
 * check that aborts (libFuzzer then saves the input as a crash), and the
 * check that a message meant for a log or .progress is one clean line.
 */
#ifndef FLOWFS_FUZZUTIL_H
#define FLOWFS_FUZZUTIL_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A property that must hold: when it does not, say which and abort. */
#define FUZZ_CHECK(cond, ...)                                                  \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: property failed: %s: ", __FILE__, \
				__LINE__, #cond);                              \
			fprintf(stderr, __VA_ARGS__);                          \
			fputc('\n', stderr);                                   \
			abort();                                               \
		}                                                              \
	} while (0)

/* A cause for the user: NUL-terminated within len, not empty, one line. */
static inline __attribute__((unused)) void fuzz_check_message(const char *msg, size_t len)
{
	size_t n = strnlen(msg, len);

	FUZZ_CHECK(n < len, "message not terminated");
	FUZZ_CHECK(n > 0, "empty message");
	for (size_t i = 0; i < n; i++)
		FUZZ_CHECK((unsigned char)msg[i] >= ' ', "control byte 0x%02x in message '%s'",
			   (unsigned char)msg[i], msg);
}

#endif
