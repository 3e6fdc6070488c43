/*
 * opttab.c - one option table per program, and its printers (opttab.h):
 * the parser of a value, --help and the man page read the same entries,
 * so that none can say what another does not.
 */
#include "opttab.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* --help's layout: the option's spelling in a column this wide, the help
 * after it, wrapped before this column. */
#define HELP_COL 26
#define HELP_WIDTH 79

void opttab_long_name(const struct opttab *o, char *buf, size_t len)
{
	size_t i = 0;

	if (len == 0)
		return;
	if (o->name && !(o->flags & OPTTAB_VERBATIM))
		for (; o->name[i] && i + 1 < len; i++)
			buf[i] = o->name[i] == '_' ? '-' : o->name[i];
	buf[i] = '\0';
}

void opttab_spelling(const struct opttab_prog *p, const struct opttab *o, char *buf,
		     size_t len)
{
	char lname[64];
	const char *arg = o->arg ? o->arg : "";
	const char *sp = o->arg ? " " : "";

	opttab_long_name(o, lname, sizeof(lname));
	if (o->flags & OPTTAB_VERBATIM)
		snprintf(buf, len, "%s%s%s", o->name, sp, arg);
	else if (p->style == OPTTAB_FUSE)
		snprintf(buf, len, "-o %s%s%s", o->name, o->arg ? "=" : "", arg);
	else if (o->short_name)
		snprintf(buf, len, "-%c%s%s, --%s%s%s", o->short_name, sp, arg, lname, sp, arg);
	else
		snprintf(buf, len, "--%s%s%s", lname, sp, arg);
}

const struct opttab *opttab_find(const struct opttab_prog *p, const char *name, size_t len)
{
	for (size_t i = 0; i < p->nopts; i++) {
		const char *n = p->opts[i].name;
		if (n && !(p->opts[i].flags & OPTTAB_VERBATIM) && strlen(n) == len &&
		    memcmp(n, name, len) == 0)
			return &p->opts[i];
	}
	return NULL;
}

const struct opttab *opttab_by_key(const struct opttab_prog *p, int key)
{
	for (size_t i = 0; i < p->nopts; i++)
		if (p->opts[i].key == key)
			return &p->opts[i];
	return NULL;
}

int opttab_getopt(const struct opttab_prog *p, struct opttab_getopt *g)
{
	size_t n = 0, ns = 0;

	memset(g, 0, sizeof(*g));
	g->prog = p;
	if (p->nopts > OPTTAB_MAX)
		return -E2BIG;
	for (size_t i = 0; i < p->nopts; i++) {
		const struct opttab *o = &p->opts[i];
		if (o->short_name) {
			g->shortopts[ns++] = o->short_name;
			if (o->arg)
				g->shortopts[ns++] = ':';
		}
		if (!o->name || (o->flags & OPTTAB_VERBATIM))
			continue;
		if (strlen(o->name) >= OPTTAB_NAME_MAX)
			return -E2BIG;
		opttab_long_name(o, g->names[n], OPTTAB_NAME_MAX);
		g->longopts[n].name = g->names[n];
		g->longopts[n].has_arg = o->arg ? required_argument : no_argument;
		g->longopts[n].val = o->key;
		g->entry[n] = o;
		n++;
	}
	return 0;
}

const struct opttab *opttab_getopt_entry(const struct opttab_getopt *g, int c, int longindex)
{
	if (c == '?' || c == ':')
		return NULL;
	if (longindex >= 0 && longindex < OPTTAB_MAX && g->entry[longindex])
		return g->entry[longindex];
	for (size_t i = 0; i < g->prog->nopts; i++)
		if (g->prog->opts[i].short_name && g->prog->opts[i].short_name == c)
			return &g->prog->opts[i];
	return NULL;
}

/* "1 to 100", or "1 or more" when hi is LONG_MAX, into buf. */
static void range_text(const struct opttab *o, char *buf, size_t len)
{
	if (o->hi == LONG_MAX)
		snprintf(buf, len, "%ld or more", o->lo);
	else
		snprintf(buf, len, "%ld to %ld", o->lo, o->hi);
}

int opttab_parse_int(const struct opttab *o, enum opttab_style style, const char *text,
		     long *out, char *err)
{
	char range[64], name[OPTTAB_NAME_MAX + 2], *end;
	const char *sep = "=";
	long v;

	range_text(o, range, sizeof(range));
	if (style == OPTTAB_LONG) {	/* --max-records 0, as typed */
		size_t i = 0;
		name[i++] = '-';
		name[i++] = '-';
		for (const char *c = o->name; *c && i < sizeof(name) - 1; c++)
			name[i++] = *c == '_' ? '-' : *c;
		name[i] = '\0';
		sep = " ";
	} else {
		snprintf(name, sizeof(name), "%s", o->name);
	}
	errno = 0;
	v = strtol(text, &end, 10);
	if (errno || end == text || *end) {
		snprintf(err, OPTTAB_ERRLEN, "%s%s%.40s is not a whole number: %s takes %s", name,
			 sep, text, name, range);
		return -EINVAL;
	}
	if (v < o->lo || v > o->hi) {
		snprintf(err, OPTTAB_ERRLEN, "%s%s%.40s is out of range: %s takes %s", name, sep,
			 text, name, range);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

int opttab_store(const struct opttab *o, enum opttab_style style, void *base, const char *text,
		 char *err)
{
	char *at = (char *)base + o->at;
	long v;
	int rc;

	if (o->at == OPTTAB_NOWHERE)
		return 0;
	switch (o->type) {
	case OPTTAB_FLAG:
		*(int *)(void *)at = 1;
		return 0;
	case OPTTAB_INT:
		rc = opttab_parse_int(o, style, text, &v, err);
		if (rc)
			return rc;
		*(int *)(void *)at = (int)v;
		return 0;
	case OPTTAB_TEXT: {
		char *copy = strdup(text);
		if (!copy) {
			snprintf(err, OPTTAB_ERRLEN, "out of memory");
			return -ENOMEM;
		}
		free(*(char **)(void *)at);
		*(char **)(void *)at = copy;
		return 0;
	}
	}
	return -EINVAL;
}

void opttab_defaults(const struct opttab_prog *p, void *base)
{
	for (size_t i = 0; i < p->nopts; i++) {
		const struct opttab *o = &p->opts[i];
		if (o->at == OPTTAB_NOWHERE || o->type == OPTTAB_TEXT || (o->flags & OPTTAB_UNSET))
			continue;
		*(int *)(void *)((char *)base + o->at) = o->type == OPTTAB_INT ? (int)o->def : 0;
	}
}

/* What --help and the man page say after an option's help: its default,
 * range and values ("default 6; 1 to 100"), into buf; "" when nothing. */
static void facts(const struct opttab_prog *p, const struct opttab *o, char *buf, size_t len)
{
	char range[64], dyn[512];
	const char *values = o->values;
	size_t n = 0;

	buf[0] = '\0';
	if (o->def_text)
		n += (size_t)snprintf(buf + n, len - n, "default %s", o->def_text);
	else if (o->type == OPTTAB_INT && !(o->flags & OPTTAB_NODEF))
		n += (size_t)snprintf(buf + n, len - n, "default %ld", o->def);
	if (n < len && o->type == OPTTAB_INT) {
		range_text(o, range, sizeof(range));
		n += (size_t)snprintf(buf + n, len - n, "%s%s", n ? "; " : "", range);
	}
	if ((o->flags & OPTTAB_DYNAMIC) && p->values) {
		p->values(o->key, dyn, sizeof(dyn));
		values = dyn;
	}
	if (n < len && values)
		snprintf(buf + n, len - n, "%s%s", n ? "; " : "", values);
}

/* Print text (words between single spaces) from column col, wrapped
 * before HELP_WIDTH, the lines after the first indented by indent; ends
 * with a newline. */
static void wrap(FILE *f, const char *s, size_t col, size_t indent)
{
	bool first = true;

	for (;;) {
		while (*s == ' ')
			s++;
		if (!*s)
			break;
		size_t w = strcspn(s, " ");
		if (!first && col + 1 + w > HELP_WIDTH) {
			fprintf(f, "\n%*s", (int)indent, "");
			col = indent;
		} else if (!first) {
			fputc(' ', f);
			col++;
		}
		fwrite(s, 1, w, f);
		col += w;
		s += w;
		first = false;
	}
	fputc('\n', f);
}

void opttab_help(const struct opttab_prog *p, FILE *f)
{
	char spell[128], fact[640], line[1600];
	size_t para = p->description ? strcspn(p->description, "\n") : 0;

	fprintf(f, "usage: %s %s\n\n", p->name, p->synopsis);
	if (para) {
		snprintf(line, sizeof(line), "%.*s", (int)para, p->description);
		wrap(f, line, 0, 0);
		fputc('\n', f);
	}
	fputs("options:\n", f);
	for (size_t i = 0; i < p->nopts; i++) {
		const struct opttab *o = &p->opts[i];
		opttab_spelling(p, o, spell, sizeof(spell));
		fprintf(f, "  %s", spell);
		size_t col = 2 + strlen(spell);
		if (col + 2 > HELP_COL) {
			fprintf(f, "\n%*s", HELP_COL, "");
		} else {
			fprintf(f, "%*s", (int)(HELP_COL - col), "");
		}
		facts(p, o, fact, sizeof(fact));
		snprintf(line, sizeof(line), "%s%s%s%s", o->help, fact[0] ? " (" : "", fact,
			 fact[0] ? ")" : "");
		wrap(f, line, HELP_COL, HELP_COL);
	}
	if (p->footer)
		fprintf(f, "\n%s", p->footer);
}

/*
 * Text for roff: '\' as \e, '-' as \- (a minus, so that a copied option
 * works), a line that would start with '.' or '\'' guarded with \&; an
 * empty line between paragraphs becomes .PP when para.  Newlines kept.
 */
static void roff(FILE *f, const char *s, bool para)
{
	bool bol = true;

	for (; *s; s++) {
		if (bol && *s == '\n' && para) {
			fputs(".PP\n", f);
			continue;
		}
		if (bol && (*s == '.' || *s == '\''))
			fputs("\\&", f);
		bol = *s == '\n';
		if (*s == '\\')
			fputs("\\e", f);
		else if (*s == '-')
			fputs("\\-", f);
		else
			fputc(*s, f);
	}
	if (!bol)
		fputc('\n', f);
}

void opttab_man(const struct opttab_prog *p, FILE *f)
{
	char spell[128], fact[640], upper[64];
	size_t i;

	for (i = 0; p->name[i] && i + 1 < sizeof(upper); i++)
		upper[i] = (char)(p->name[i] >= 'a' && p->name[i] <= 'z' ? p->name[i] - 32
									  : p->name[i]);
	upper[i] = '\0';
	fprintf(f, ".TH %s %d \"\" \"%s %s\" \"%s\"\n", upper, p->section, p->name, p->version,
		p->section == 8 ? "System Administration" : "User Commands");
	fputs(".SH NAME\n", f);
	roff(f, p->name, false);
	fputs("\\- ", f);
	roff(f, p->summary, false);
	fputs(".SH SYNOPSIS\n.B ", f);
	roff(f, p->name, false);
	roff(f, p->synopsis, false);
	if (p->description) {
		fputs(".SH DESCRIPTION\n", f);
		roff(f, p->description, true);
	}
	fputs(".SH OPTIONS\n", f);
	for (i = 0; i < p->nopts; i++) {
		const struct opttab *o = &p->opts[i];
		opttab_spelling(p, o, spell, sizeof(spell));
		fputs(".TP\n.B ", f);
		roff(f, spell, false);
		roff(f, o->help, false);
		facts(p, o, fact, sizeof(fact));
		if (fact[0]) {
			char paren[sizeof(fact) + 4];
			snprintf(paren, sizeof(paren), "(%s)", fact);
			fputs(".br\n", f);
			roff(f, paren, false);
		}
	}
	if (p->nexamples) {
		fputs(".SH EXAMPLES\n", f);
		for (i = 0; i < p->nexamples; i++) {
			fputs(".PP\n", f);
			roff(f, p->examples[i].what, false);
			fputs(".PP\n.nf\n.RS 4\n", f);
			roff(f, p->examples[i].text, false);
			fputs(".RE\n.fi\n", f);
		}
	}
	if (p->files) {
		fputs(".SH FILES\n", f);
		for (const char *s = p->files; *s;) {
			size_t n = strcspn(s, "\n"), tab = strcspn(s, "\t");
			char path[512], what[1024];
			if (tab > n)
				tab = n;
			snprintf(path, sizeof(path), "%.*s", (int)tab, s);
			snprintf(what, sizeof(what), "%.*s", tab < n ? (int)(n - tab - 1) : 0,
				 s + tab + (tab < n));
			fputs(".TP\n.I ", f);
			roff(f, path, false);
			roff(f, what, false);
			s += n + (s[n] == '\n');
		}
	}
	if (p->see_also) {
		fputs(".SH SEE ALSO\n", f);
		roff(f, p->see_also, false);
	}
}
