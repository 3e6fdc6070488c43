/*
 * test_opttab.c - the option table's printers and parser (cache/opttab.c):
 * --help and the man page list every entry with its default and range,
 * roff is escaped, a value out of range is refused in one message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "opttab.h"

struct t_opts {
	int retries, verbose;
	char *name;
};

static const struct opttab t_table[] = {
	{.name = "retries", .type = OPTTAB_INT, .arg = "N", .lo = 1, .hi = 100, .def = 6,
	 .help = "attempts after the first", .at = offsetof(struct t_opts, retries)},
	{.name = "name_of_it", .type = OPTTAB_TEXT, .arg = "TEXT", .def_text = "none",
	 .values = "a or b", .help = "a name -- with dashes and a \\ backslash",
	 .at = offsetof(struct t_opts, name)},
	{.name = "verbose", .short_name = 'v', .type = OPTTAB_FLAG,
	 .help = ".starts with a dot and is long enough to be wrapped by the help printer "
		 "at least once, probably twice", .at = offsetof(struct t_opts, verbose)},
	{.name = "-f", .type = OPTTAB_FLAG, .help = "verbatim", .flags = OPTTAB_VERBATIM,
	 .at = OPTTAB_NOWHERE},
};

static const struct opttab_example t_ex[] = {{"An example:", "prog --retries 3\n.x"}};

static struct opttab_prog t_prog(enum opttab_style style)
{
	struct opttab_prog p = {
		.name = "prog", .section = 1, .version = "9.9.9", .summary = "a test program",
		.synopsis = "[options] ARG", .description = "First paragraph.\n\nSecond one.\n",
		.style = style, .opts = t_table, .nopts = sizeof(t_table) / sizeof(t_table[0]),
		.examples = t_ex, .nexamples = 1, .files = "/etc/prog\tits configuration",
		.see_also = "other(1)", .footer = "bye\n",
	};
	return p;
}

/* What printer f prints for p, as a malloc'd string. */
static char *printed(void (*f)(const struct opttab_prog *, FILE *), const struct opttab_prog *p)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);

	assert_non_null(m);
	f(p, m);
	fclose(m);
	return buf;
}

/* s with every run of spaces and newlines made one space, in place (a
 * wrapped help line reads as one). */
static char *flat(char *s)
{
	char *w = s;

	for (const char *r = s; *r; r++) {
		bool sp = *r == ' ' || *r == '\n';
		if (sp && w > s && w[-1] == ' ')
			continue;
		*w++ = sp ? ' ' : *r;
	}
	*w = '\0';
	return s;
}

static void test_help_long(void **state)
{
	(void)state;
	struct opttab_prog p = t_prog(OPTTAB_LONG);
	char *h = printed(opttab_help, &p);

	assert_non_null(strstr(h, "usage: prog [options] ARG\n"));
	assert_non_null(strstr(h, "First paragraph."));
	assert_null(strstr(h, "Second one."));		/* --help: the first paragraph */
	assert_non_null(strstr(h, "  --retries N "));
	assert_non_null(strstr(h, "(default 6; 1 to 100)"));
	assert_non_null(strstr(h, "  --name-of-it TEXT "));
	assert_non_null(strstr(h, "  -v, --verbose "));
	assert_non_null(strstr(h, "  -f "));
	assert_true(strlen(h) > 4 && strcmp(h + strlen(h) - 4, "bye\n") == 0);
	/* wrapped: no line longer than 79 columns, none ending in a space */
	for (char *l = h; *l;) {
		size_t n = strcspn(l, "\n");
		assert_true(n <= 79);
		assert_true(n == 0 || l[n - 1] != ' ');
		l += n + (l[n] == '\n');
	}
	assert_non_null(strstr(flat(h), "(default none; a or b)"));
	free(h);
}

static void test_help_fuse(void **state)
{
	(void)state;
	struct opttab_prog p = t_prog(OPTTAB_FUSE);
	char *h = printed(opttab_help, &p);

	assert_non_null(strstr(h, "  -o retries=N "));
	assert_non_null(strstr(h, "  -o name_of_it=TEXT "));
	assert_non_null(strstr(h, "  -o verbose "));
	free(h);
}

static void test_man(void **state)
{
	(void)state;
	struct opttab_prog p = t_prog(OPTTAB_LONG);
	char *m = printed(opttab_man, &p);

	assert_true(strncmp(m, ".TH PROG 1 \"\" \"prog 9.9.9\"", 26) == 0);
	assert_non_null(strstr(m, ".SH NAME\nprog\n\\- a test program\n"));
	assert_non_null(strstr(m, ".SH SYNOPSIS\n.B prog\n[options] ARG\n"));
	assert_non_null(strstr(m, "First paragraph.\n.PP\nSecond one.\n"));
	/* every entry, once, its spelling escaped, then its facts */
	assert_non_null(strstr(m, ".TP\n.B \\-\\-retries N\nattempts after the first\n"
				  ".br\n(default 6; 1 to 100)\n"));
	assert_non_null(strstr(m, ".B \\-\\-name\\-of\\-it TEXT\n"
				  "a name \\-\\- with dashes and a \\e backslash\n"));
	assert_non_null(strstr(m, ".B \\-v, \\-\\-verbose\n\\&.starts with a dot"));
	assert_non_null(strstr(m, ".TP\n.B \\-f\n"));
	assert_non_null(strstr(m, ".SH EXAMPLES\n"));
	assert_non_null(strstr(m, "prog \\-\\-retries 3\n\\&.x\n"));
	assert_non_null(strstr(m, ".SH FILES\n.TP\n.I /etc/prog\nits configuration\n"));
	assert_non_null(strstr(m, ".SH SEE ALSO\nother(1)\n"));
	size_t n = 0;
	for (const char *s = m; (s = strstr(s, "\n.TP\n.B ")); s++)
		n++;
	assert_int_equal(n, sizeof(t_table) / sizeof(t_table[0]));
	free(m);
}

static void test_parse_and_store(void **state)
{
	(void)state;
	struct opttab_prog p = t_prog(OPTTAB_FUSE);
	struct t_opts o = {0};
	char err[OPTTAB_ERRLEN];
	long v;

	opttab_defaults(&p, &o);
	assert_int_equal(o.retries, 6);
	assert_int_equal(opttab_parse_int(&t_table[0], OPTTAB_FUSE, "100", &v, err), 0);
	assert_int_equal(v, 100);
	assert_int_equal(opttab_parse_int(&t_table[0], OPTTAB_FUSE, "101", &v, err), -EINVAL);
	assert_string_equal(err, "retries=101 is out of range: retries takes 1 to 100");
	assert_int_equal(opttab_parse_int(&t_table[0], OPTTAB_FUSE, "0", &v, err), -EINVAL);
	assert_int_equal(opttab_parse_int(&t_table[0], OPTTAB_FUSE, "3x", &v, err), -EINVAL);
	assert_string_equal(err, "retries=3x is not a whole number: retries takes 1 to 100");
	/* as a program of long options spells it, so the user reads what was typed */
	assert_int_equal(opttab_parse_int(&t_table[0], OPTTAB_LONG, "101", &v, err), -EINVAL);
	assert_string_equal(err, "--retries 101 is out of range: --retries takes 1 to 100");
	assert_int_equal(opttab_parse_int(&t_table[0], OPTTAB_FUSE, "", &v, err), -EINVAL);
	assert_int_equal(opttab_store(&t_table[0], OPTTAB_FUSE, &o, "7", err), 0);
	assert_int_equal(o.retries, 7);
	assert_int_equal(opttab_store(&t_table[1], OPTTAB_FUSE, &o, "a", err), 0);
	assert_int_equal(opttab_store(&t_table[1], OPTTAB_FUSE, &o, "b", err), 0);	/* the old one freed */
	assert_string_equal(o.name, "b");
	assert_int_equal(opttab_store(&t_table[2], OPTTAB_FUSE, &o, NULL, err), 0);
	assert_int_equal(o.verbose, 1);
	assert_int_equal(opttab_store(&t_table[3], OPTTAB_FUSE, &o, NULL, err), 0);	/* nowhere */
	assert_ptr_equal(opttab_find(&p, "retries=5", 7), &t_table[0]);
	assert_null(opttab_find(&p, "-f", 2));		/* verbatim: not an -o name */
	assert_null(opttab_find(&p, "retrie", 6));
	free(o.name);
}

static void test_getopt(void **state)
{
	(void)state;
	struct opttab_prog p = t_prog(OPTTAB_LONG);
	static struct opttab_getopt g;

	assert_int_equal(opttab_getopt(&p, &g), 0);
	assert_string_equal(g.shortopts, "v");
	assert_string_equal(g.longopts[0].name, "retries");
	assert_int_equal(g.longopts[0].has_arg, required_argument);
	assert_string_equal(g.longopts[1].name, "name-of-it");
	assert_string_equal(g.longopts[2].name, "verbose");
	assert_null(g.longopts[3].name);	/* the verbatim one has no long name */
	assert_ptr_equal(opttab_getopt_entry(&g, 0, 1), &t_table[1]);
	assert_ptr_equal(opttab_getopt_entry(&g, 'v', -1), &t_table[2]);
	assert_null(opttab_getopt_entry(&g, '?', -1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_help_long),
		cmocka_unit_test(test_help_fuse),
		cmocka_unit_test(test_man),
		cmocka_unit_test(test_parse_and_store),
		cmocka_unit_test(test_getopt),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
