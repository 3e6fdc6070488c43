/*
 * drivers.c - the table of drivers, and the one place that reads which
 * driver a collector's URL and the driver option name.
 *
 * A dialect is a sibling file behind struct driver_ops (fetch_i.h), like
 * SQLite's VFS or curl's protocol handlers: adding one is its file, its
 * extern and its line below (and its name in fetch/meson.build).  Nothing
 * else in the engine or the fronts names a dialect: they ask this table
 * (fetch_driver_resolve) and test capabilities (FETCH_DRIVER_*), never
 * names or URL prefixes.
 */
#include "fetch_i.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern const struct driver_ops flowapi_driver;
extern const struct driver_ops sna_driver;
extern const struct driver_ops nfdump_driver;
extern const struct driver_ops flowmon_driver;

/* The first line is the default driver (no prefix, no option). */
static const struct fetch_driver fetch_drivers[] = {
	{.name = "flowapi", .what = "a flowapi/1 collector", .secret = "the token",
	 .caps = FETCH_DRIVER_HTTP, .ops = &flowapi_driver},
	{.name = "sna", .prefix = {"sna+"}, .url_form = "sna+https://MANAGER",
	 .what = "an SNA Manager", .secret = "the SNA password",
	 .caps = FETCH_DRIVER_HTTP | FETCH_DRIVER_SESSIONS, .ops = &sna_driver},
	{.name = "nfdump", .prefix = {"nfdump:", "nfdump+"},
	 .url_form = "nfdump:/ARCHIVE/DIR or nfdump+ssh://[USER@]HOST[:PORT]/ARCHIVE/DIR",
	 .what = "an nfdump archive", .ops = &nfdump_driver},
	{.name = "flowmon", .prefix = {"flowmon+"}, .url_form = "flowmon+https://APPLIANCE",
	 .what = "a Flowmon appliance", .secret = "the Flowmon password",
	 .caps = FETCH_DRIVER_HTTP | FETCH_DRIVER_SESSIONS, .ops = &flowmon_driver},
};

#define NDRIVERS (sizeof(fetch_drivers) / sizeof(fetch_drivers[0]))

const struct fetch_driver *fetch_driver_at(size_t i)
{
	return i < NDRIVERS ? &fetch_drivers[i] : NULL;
}

const struct fetch_driver *fetch_driver_find(const char *name)
{
	for (size_t i = 0; name && i < NDRIVERS; i++)
		if (strcmp(fetch_drivers[i].name, name) == 0)
			return &fetch_drivers[i];
	return NULL;
}

/* The table's names, for "unknown driver": "flowapi, sna". */
static void driver_names(char *buf, size_t len)
{
	size_t o = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < NDRIVERS && o < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "%s%s", i ? ", " : "", fetch_drivers[i].name);
}

void fetch_driver_help(char *buf, size_t len)
{
	size_t o = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < NDRIVERS && o < len; i++) {
		const struct fetch_driver *d = &fetch_drivers[i];
		const char *sep = i == 0 ? "" : i + 1 == NDRIVERS ? " or " : ", ";
		o += (size_t)snprintf(buf + o, len - o, "%s%s%s%s%s%s", sep, d->name,
				      i == 0 ? " (default)" : "", d->url_form ? " (also: a URL " : "",
				      d->url_form ? d->url_form : "", d->url_form ? ")" : "");
	}
}

/* The URL prefix of the table that url starts with: its line, and the
 * prefix's length in *plen; NULL when none does. */
static const struct fetch_driver *driver_by_prefix(const char *url, size_t *plen)
{
	for (size_t i = 0; i < NDRIVERS; i++) {
		for (size_t k = 0; k < FETCH_DRIVER_PREFIXES; k++) {
			const char *p = fetch_drivers[i].prefix[k];
			if (p && strncmp(url, p, strlen(p)) == 0) {
				*plen = strlen(p);
				return &fetch_drivers[i];
			}
		}
	}
	return NULL;
}

/* "(sna+https:// for an SNA Manager)": how the table's prefixed drivers
 * that speak HTTP are named by URL, for the message on a bad scheme. */
static void prefix_hint(char *buf, size_t len)
{
	size_t o = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < NDRIVERS && o < len; i++) {
		const struct fetch_driver *d = &fetch_drivers[i];
		if (!d->prefix[0] || !(d->caps & FETCH_DRIVER_HTTP))
			continue;
		o += (size_t)snprintf(buf + o, len - o, "%s%shttps:// for %s", o ? ", " : " (",
				      d->prefix[0], d->what);
	}
	if (o && o + 1 < len)
		snprintf(buf + o, len - o, ")");
}

int fetch_driver_resolve(const char *url, const char *driver_opt, const struct fetch_driver **drv,
			 const char **transport_url, char *err)
{
	const struct fetch_driver *d;
	size_t plen = 0;

	if (!url) {
		snprintf(err, FETCH_ERRLEN, "the collector URL is missing");
		return -EINVAL;
	}
	d = driver_by_prefix(url, &plen);
	if (d && driver_opt && strcmp(driver_opt, d->name) != 0) {
		snprintf(err, FETCH_ERRLEN, "the URL says %s, the driver option says %.32s", d->name,
			 driver_opt);
		return -EINVAL;
	}
	if (!d && driver_opt) {
		d = fetch_driver_find(driver_opt);
		if (!d) {
			char names[200];
			driver_names(names, sizeof(names));
			snprintf(err, FETCH_ERRLEN, "unknown driver '%.32s' (known: %s)", driver_opt,
				 names);
			return -EINVAL;
		}
	}
	if (!d)
		d = &fetch_drivers[0];
	const char *rest = url + plen;
	if ((d->caps & FETCH_DRIVER_HTTP) && strncmp(rest, "http://", 7) != 0 &&
	    strncmp(rest, "https://", 8) != 0) {
		char hint[200];
		prefix_hint(hint, sizeof(hint));
		snprintf(err, FETCH_ERRLEN, "the collector URL must start with http:// or https://%s",
			 hint);
		return -EINVAL;
	}
	*drv = d;
	*transport_url = rest;
	return 0;
}

void decoded_free(struct decoded *d)
{
	free(d->recs);
	free(d->parts);
	memset(d, 0, sizeof(*d));
}

void fetch_driver_values(int key, char *buf, size_t len)
{
	(void)key;
	fetch_driver_help(buf, len);
}
