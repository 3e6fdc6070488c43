/*
 * opttab.h - a program's options as one table, and what is made of it:
 * the parsing of a value (its range checked, one message for every
 * program), --help and the man page.  flowfs, flowfetch and flowsim each
 * keep one table (issue 15): an option is written once, with its name,
 * argument, default, allowed values and help, so --help, the man page and
 * the parser cannot disagree.
 *
 * It lives in the cache room because that is the room every program links
 * (it is its own small library, opttab_dep: flowsim takes it without
 * SQLite), and it depends on nothing but libc.
 *
 * Names.  An entry's name is canonical, with '_' between words
 * ("max_inflight"): a program of OPTTAB_FUSE style spells it "-o
 * max_inflight=N" (flowfs), one of OPTTAB_LONG style "--max-inflight N"
 * (flowfetch, flowsim).  Messages use the canonical name, so that a value
 * refused by flowfs and by flowfetch is refused in the same words.
 */
#ifndef FLOWFS_OPTTAB_H
#define FLOWFS_OPTTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <getopt.h>
#include <stdio.h>

#define OPTTAB_ERRLEN 256

enum opttab_type {
	OPTTAB_FLAG,		/* no argument: sets an int to 1 */
	OPTTAB_INT,		/* a whole number in [lo, hi] */
	OPTTAB_TEXT,		/* any text; 'values' may say what is taken */
};

enum {
	/* not the program's own: passed on (fuse's allow_other, -f); only
	 * documented */
	OPTTAB_PASS = 1u << 0,
	/* the option takes its allowed values from opttab_prog.values(key) */
	OPTTAB_DYNAMIC = 1u << 1,
	/* the default is none: not shown even for an OPTTAB_INT */
	OPTTAB_NODEF = 1u << 2,
	/* the program's own spelling is given whole in 'name' ("-f", "-o"):
	 * no -o NAME= or --NAME around it */
	OPTTAB_VERBATIM = 1u << 3,
	/* the default is shown but not stored by opttab_defaults (0 stays:
	 * "not given", which the program tells from a value given) */
	OPTTAB_UNSET = 1u << 4,
};

/* One option. */
struct opttab {
	const char *name;	/* canonical ("max_inflight"), or the spelling when VERBATIM */
	char short_name;	/* 'o', 'h' (OPTTAB_LONG programs), or 0 */
	enum opttab_type type;
	const char *arg;	/* the argument's name in help ("N", "FILE"); NULL: a flag */
	long lo, hi, def;	/* OPTTAB_INT: the range, and the default */
	const char *def_text;	/* the default in words (a text option's, or an int's
				 * when def alone would mislead); NULL: def or none */
	const char *values;	/* the values taken, in words ("error, info or debug") */
	const char *help;	/* what it does: plain sentences, no markup */
	int key;		/* the program's code for it (its getopt val) */
	unsigned flags;		/* OPTTAB_* */
	/* where opttab_store writes the value in the program's options
	 * struct: an int for FLAG and INT, a char * (strdup'd, the old one
	 * freed) for TEXT; (size_t)-1 (OPTTAB_NOWHERE): the program does */
	size_t at;
};

#define OPTTAB_NOWHERE ((size_t)-1)

enum opttab_style {
	OPTTAB_FUSE,		/* -o name=ARG */
	OPTTAB_LONG,		/* --name-with-dashes ARG */
};

/* An example for the man page: what it does, and the command or line. */
struct opttab_example {
	const char *what;
	const char *text;	/* printed as is, in a no-fill block */
};

/* A program: its table, and the man page's other sections (plain text,
 * paragraphs separated by an empty line; the printers escape it). */
struct opttab_prog {
	const char *name;		/* "flowfs" */
	int section;			/* 8 or 1 */
	const char *version;		/* FLOWFS_VERSION */
	const char *summary;		/* the NAME line's: "the flows of a collector, as files" */
	const char *synopsis;		/* "[-f] [-o opt,...] URL MOUNTPOINT" */
	const char *description;
	enum opttab_style style;
	const struct opttab *opts;
	size_t nopts;
	const struct opttab_example *examples;
	size_t nexamples;
	const char *files;		/* FILES: "PATH\twhat it is" lines */
	const char *see_also;		/* "flowfetch(1), fstab(5)" */
	const char *footer;		/* --help's last lines (exit status), or NULL */
	/* the allowed values of an OPTTAB_DYNAMIC option (key), into buf */
	void (*values)(int key, char *buf, size_t len);
};

/*
 * How option o is spelled on the command line of p, with its argument
 * ("-o max_inflight=N", "--max-inflight N", "-o FILE, --output FILE"),
 * into buf (len bytes, cut to fit).  Never fails.
 */
void opttab_spelling(const struct opttab_prog *p, const struct opttab *o, char *buf,
		     size_t len);

/*
 * The long name of o as getopt_long takes it ("max-inflight"), into buf;
 * "" for an entry that has none (a short or verbatim one).  Never fails.
 */
void opttab_long_name(const struct opttab *o, char *buf, size_t len);

/* The entry of p whose canonical name is name (len bytes of it), or NULL. */
const struct opttab *opttab_find(const struct opttab_prog *p, const char *name, size_t len);

/* The entry of p with key 'key', or NULL. */
const struct opttab *opttab_by_key(const struct opttab_prog *p, int key);

/*
 * An OPTTAB_INT value: 0 with *out, or -EINVAL with the message in err
 * (OPTTAB_ERRLEN bytes) naming the option as a program of that style
 * spells it, so the user reads what was typed: "retries=0 is out of range:
 * retries takes 1 to 100" (OPTTAB_FUSE), "--retries 0 is out of range:
 * --retries takes 1 to 100" (OPTTAB_LONG); "... is not a whole number:
 * ..." alike.  The rest of the message is the same in every program.
 */
int opttab_parse_int(const struct opttab *o, enum opttab_style style, const char *text,
		     long *out, char *err);

/*
 * Store the value text (NULL for a flag) of option o into the options
 * struct at base, at o->at: an int (FLAG: 1; INT: opttab_parse_int, its
 * message in style's spelling), or a
 * strdup'd char * for TEXT (the one there before freed).  0, -EINVAL with
 * the message in err, or -ENOMEM.  An entry with at OPTTAB_NOWHERE: 0,
 * nothing stored.
 */
int opttab_store(const struct opttab *o, enum opttab_style style, void *base, const char *text,
		 char *err);

/* Every OPTTAB_INT entry's default (and every FLAG's 0) into the options
 * struct at base.  Never fails. */
void opttab_defaults(const struct opttab_prog *p, void *base);

/* getopt_long's view of an OPTTAB_LONG table (opttab_getopt). */
#define OPTTAB_MAX 96
#define OPTTAB_NAME_MAX 40
struct opttab_getopt {
	struct option longopts[OPTTAB_MAX + 1];
	char names[OPTTAB_MAX][OPTTAB_NAME_MAX];
	char shortopts[3 * OPTTAB_MAX + 1];
	const struct opttab *entry[OPTTAB_MAX];	/* longopts[i]'s entry */
	const struct opttab_prog *prog;
};

/* Fill g from p's entries (long names, has_arg from arg, val = key; the
 * short names into shortopts, "o:h").  0, or -E2BIG when p has more than
 * OPTTAB_MAX entries or a name longer than OPTTAB_NAME_MAX - 1. */
int opttab_getopt(const struct opttab_prog *p, struct opttab_getopt *g);

/* The entry getopt_long matched: by longindex (set it to -1 before each
 * call: a short option leaves it) or else by the short option c; NULL for
 * '?' or ':' (getopt said why). */
const struct opttab *opttab_getopt_entry(const struct opttab_getopt *g, int c, int longindex);

/* --help: the synopsis, the description's first paragraph and every
 * option with its help, default and range, wrapped to 80 columns, then
 * the footer.  Never fails (a write error shows in ferror(f)). */
void opttab_help(const struct opttab_prog *p, FILE *f);

/* --man: the man page in roff (man(7) macros): NAME, SYNOPSIS,
 * DESCRIPTION, OPTIONS (every entry, with its default and range),
 * EXAMPLES, FILES, SEE ALSO.  Never fails (as opttab_help). */
void opttab_man(const struct opttab_prog *p, FILE *f);

#endif
