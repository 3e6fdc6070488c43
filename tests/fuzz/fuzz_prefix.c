/*
 * fuzz_prefix.c - libFuzzer target: addresses and prefixes (cache/prefix.c).
 *
 * The input is used twice: as text (cut at the first NUL) for
 * cache_prefix_parse(), and its first 17 bytes as a raw 16-byte address and
 * a prefix length for the formatters.
 *
 * Properties checked beyond "no crash":
 *   - a parsed prefix has its host bits clear, a length in its family's
 *     range, and the family of its address; it contains its first and last
 *     address (cache_prefix_range) and nothing of the other family;
 *   - its canonical text parses to the same prefix and is its own
 *     canonical text; the address part agrees with inet_pton, and with
 *     glibc's inet_ntop wherever that does not write a dotted quad;
 *   - a parse that fails leaves *out untouched;
 *   - any 16 bytes, and any prefix cut from them, survive text and back.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "fuzzutil.h"

static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static bool same_prefix(const struct cache_prefix *a, const struct cache_prefix *b)
{
	return memcmp(a->addr, b->addr, 16) == 0 && a->len == b->len && a->v4 == b->v4;
}

/* Canonical text, then back: the same prefix, the same text. */
static void check_text_round_trip(const struct cache_prefix *p)
{
	char text[64], again[64];
	struct cache_prefix q;

	cache_prefix_format(p, text, sizeof(text));
	FUZZ_CHECK(strlen(text) <= 43 + 4, "canonical text '%s' too long", text);
	int rc = cache_prefix_parse(text, &q);
	FUZZ_CHECK(rc == 0, "canonical text '%s' does not parse (%d)", text, rc);
	FUZZ_CHECK(same_prefix(p, &q), "canonical text '%s' is another prefix", text);
	cache_prefix_format(&q, again, sizeof(again));
	FUZZ_CHECK(strcmp(text, again) == 0, "'%s' is canonically '%s'", text, again);
}

/* The address text against glibc, both ways. */
static void check_addr_text(const uint8_t a[16])
{
	char text[64], ref[INET6_ADDRSTRLEN];
	uint8_t back[16];
	bool v4 = memcmp(a, v4_mapped, 12) == 0;

	cache_addr_format(a, text, sizeof(text));
	if (v4) {
		FUZZ_CHECK(inet_pton(AF_INET, text, back + 12) == 1, "'%s' is not IPv4", text);
		memcpy(back, v4_mapped, 12);
	} else {
		FUZZ_CHECK(inet_pton(AF_INET6, text, back) == 1, "'%s' is not IPv6", text);
		FUZZ_CHECK(inet_ntop(AF_INET6, a, ref, sizeof(ref)) != NULL, "inet_ntop failed");
		if (!strchr(ref, '.'))
			FUZZ_CHECK(strcmp(text, ref) == 0, "'%s', glibc writes '%s'", text, ref);
	}
	FUZZ_CHECK(memcmp(a, back, 16) == 0, "'%s' is another address", text);
}

static void check_parsed(const char *text, const struct cache_prefix *p)
{
	bool mapped = memcmp(p->addr, v4_mapped, 12) == 0;
	uint8_t lo[16], hi[16], other[16];

	FUZZ_CHECK(p->len >= 0 && p->len <= 128, "'%s': length %d", text, p->len);
	FUZZ_CHECK(!p->v4 || (mapped && p->len >= 96), "'%s': IPv4 with length %d", text, p->len);
	FUZZ_CHECK(p->v4 || !mapped || p->len < 96, "'%s': an IPv4 address kept as IPv6", text);
	cache_prefix_range(p, lo, hi);
	FUZZ_CHECK(memcmp(lo, p->addr, 16) == 0, "'%s': host bits set", text);
	FUZZ_CHECK(memcmp(lo, hi, 16) <= 0, "'%s': range upside down", text);
	FUZZ_CHECK(p->len < 128 || memcmp(lo, hi, 16) == 0, "'%s': a single address spans", text);
	/* within the family, lo <= a <= hi is "a in p" (the store's BETWEEN):
	 * the bounds, and every address one bit away from them */
	for (int bit = -1; bit < 128; bit++) {
		for (int side = 0; side < 2; side++) {
			uint8_t a[16];
			memcpy(a, side ? hi : lo, 16);
			if (bit >= 0)
				a[bit / 8] ^= (uint8_t)(0x80 >> (bit % 8));
			if ((memcmp(a, v4_mapped, 12) == 0) != p->v4)
				continue;
			bool between = memcmp(lo, a, 16) <= 0 && memcmp(a, hi, 16) <= 0;
			FUZZ_CHECK(between == cache_prefix_contains(p, a),
				   "'%s': bit %d off its %s bound: between %d, contains %d", text,
				   bit, side ? "upper" : "lower", between, !between);
		}
	}
	/* an address of the other family is never inside */
	memset(other, 0, sizeof(other));
	if (!p->v4)
		memcpy(other, v4_mapped, 12);
	else
		other[0] = 0x20;
	FUZZ_CHECK(!cache_prefix_contains(p, other), "'%s' contains the other family", text);
	/* the address part agrees with inet_pton */
	char host[64];
	size_t hl = strcspn(text, "/");
	uint8_t ref[16];
	if (hl < sizeof(host)) {
		memcpy(host, text, hl);
		host[hl] = '\0';
		if (inet_pton(AF_INET, host, ref + 12) == 1)
			memcpy(ref, v4_mapped, 12);
		else
			FUZZ_CHECK(inet_pton(AF_INET6, host, ref) == 1, "'%s' parsed, inet_pton refuses", text);
		FUZZ_CHECK(memcmp(ref, p->addr, 16) == 0, "'%s': another address than inet_pton's", text);
	}
	check_text_round_trip(p);
	check_addr_text(p->addr);
}

/* Any 16 bytes as an address, and as a prefix of length 'len' (its host
 * bits cleared). */
static void check_raw(const uint8_t *raw, unsigned len)
{
	struct cache_prefix p;
	bool mapped = memcmp(raw, v4_mapped, 12) == 0;

	check_addr_text(raw);
	memset(&p, 0, sizeof(p));
	memcpy(p.addr, raw, 16);
	p.v4 = mapped;
	p.len = (int)(mapped ? 96 + len % 33 : len % 129);
	if (!mapped && p.len >= 96)
		p.len = 128;	/* longer cuts of a non-mapped address stay non-mapped */
	for (int i = 0; i < 16; i++) {
		int keep = p.len - i * 8;
		p.addr[i] &= keep >= 8 ? 0xff : keep <= 0 ? 0 : (uint8_t)(0xff << (8 - keep));
	}
	if (!mapped && memcmp(p.addr, v4_mapped, 12) == 0)
		return;		/* cut into ::ffff:0:0/96 itself: parses as IPv4 */
	check_text_round_trip(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char text[256];
	struct cache_prefix p, untouched;

	if (size >= sizeof(text))
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	memset(&p, 0xa5, sizeof(p));
	untouched = p;
	if (cache_prefix_parse(text, &p) == 0)
		check_parsed(text, &p);
	else
		FUZZ_CHECK(memcmp(&p, &untouched, sizeof(p)) == 0, "'%s': refused, *out changed", text);
	if (size >= 17)
		check_raw(data, data[16]);
	return 0;
}
