/*
 * fuzzutil.h - what the libFuzzer targets of tests/fuzz share: a property
 * check that aborts (libFuzzer then saves the input as a crash), the check
 * that a message meant for a log or .progress is one clean line, and a
 * body's twin without NULs in its strings.
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

/*
 * The body with every NUL that would cut a string made a 0x01, in a copy of
 * the same length (malloc'd; NULL when the body has none, or no memory): each raw
 * NUL byte, and each "\u0000" escape (a backslash not itself escaped, then
 * u0000) as "\u0001".  The twin parses as the body does, with each string
 * whole, so whatever a decoder keeps from the body it must keep, the same,
 * from the twin: a string a NUL had cut short differs there (or is refused
 * for its 0x01).  Written apart from the decoders' own scan, on purpose.
 */
static inline __attribute__((unused)) char *fuzz_nul_twin(const char *body, size_t len)
{
	char *v = malloc(len ? len : 1);
	bool esc = false, changed = false;

	if (!v)
		return NULL;
	memcpy(v, body, len);
	for (size_t i = 0; i < len; i++) {
		if (v[i] == '\0') {
			v[i] = 1;
			changed = true;
			esc = false;
		} else if (esc) {
			if (v[i] == 'u' && len - i > 4 && memcmp(v + i + 1, "0000", 4) == 0) {
				v[i + 4] = '1';
				changed = true;
			}
			esc = false;
		} else if (v[i] == '\\') {
			esc = true;
		}
	}
	if (!changed) {
		free(v);
		return NULL;
	}
	return v;
}

#endif
