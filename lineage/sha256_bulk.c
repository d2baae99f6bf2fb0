/* Bulk RFC 6962 hashing for lineage/merkle.py: one C loop over a whole segment instead of one
 * Python or SQL call per edge. Compiled on first use by lineage/native.py (gcc + OpenSSL's
 * libcrypto); when it cannot be built, merkle.py hashes in DuckDB instead, with identical results.
 *
 * leaf_hashes: leaf = SHA-256(0x00 || canonical text of the row), where the canonical text is
 * docs/adr/0102: per column "n" when null, else "v" + the value as text (integers in decimal,
 * timestamps as integer microseconds since the epoch), the columns joined by U+001F.
 * With the CPU's SHA instructions when it has them (two rows at a time, rows collected in a buffer), else
 * OpenSSL; the same bytes either way.
 * node_hashes: node = SHA-256(0x01 || left || right) for m pairs of 32-byte digests (with the CPU's SHA
 * instructions when it has them, else OpenSSL).
 * hex_decode / hex_encode: lower-case hex text <-> bytes, for the binary id columns of segment files
 * (lineage/segment_file.py, docs/adr/0107); the leaf text above is always the hex text. leaf_hashes can
 * decode those columns in the same pass (it reads the same characters; docs/adr/0110).
 */
#include <openssl/sha.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    int64_t kind;            /* 0: utf8 with int32 offsets, 1: int64 (integers, timestamps in us),
                                2: dictionary (int32 indices) over utf8 without nulls,
                                3: bytes that are the same in every row (columns that are null or one
                                   constant, with their separators and markers, rendered by merkle.py) */
    int64_t offset;          /* the Arrow array's offset (kind 2: of the indices; kind 3: the byte count) */
    const uint8_t *validity; /* null when no value is null */
    const int32_t *offsets;  /* kind 0; kind 2: the dictionary's offsets (its own offset already applied) */
    const uint8_t *data;     /* kind 0: the characters; kind 1: the int64 values; kind 2: the dictionary's */
    const int32_t *indices;  /* kind 2 */
    uint8_t *hex_out;        /* kind 0, optional: each row's hex text decoded to hex_width / 2 bytes here
                                (a null row as zero bytes), for the binary id columns of segment files */
    int64_t hex_width;       /* characters per value when hex_out is set */
    int64_t hex_bad;         /* set to 1 when a value is not lower-case hex of hex_width characters */
} column;

/* A row's leaf bytes on their way to SHA-256. Streaming (collect = 0): hashed by OpenSSL as the buffer fills.
 * Collecting (collect = 1): kept whole in buf for the SHA instructions (ROW_MAX bytes at most, room left for
 * the padding); a longer row sets over and is hashed again by streaming. */
#define ROW_MAX (4096 - 72)
typedef struct { SHA256_CTX ctx; uint8_t buf[4096]; size_t len; int collect, over; } stream;

/* n bytes from p to d without a call for the short values of an edge (ids, names, keys): overlapping fixed-size
 * copies that neither read nor write outside [p, p + n) and [d, d + n). */
static inline void copy(uint8_t *d, const uint8_t *p, size_t n) {
    if (n >= 16 && n <= 64) {
        __builtin_memcpy(d, p, 16);
        if (n > 32) { __builtin_memcpy(d + 16, p + 16, 16); __builtin_memcpy(d + n - 32, p + n - 32, 16); }
        __builtin_memcpy(d + n - 16, p + n - 16, 16);
    } else if (n >= 8 && n < 16) {
        __builtin_memcpy(d, p, 8);
        __builtin_memcpy(d + n - 8, p + n - 8, 8);
    } else if (n < 8) {
        for (size_t k = 0; k < n; k++) d[k] = p[k];
    } else {
        memcpy(d, p, n);
    }
}

static void put(stream *s, const uint8_t *p, size_t n) {
    if (s->len + n > (s->collect ? ROW_MAX : sizeof s->buf)) {
        if (s->collect) { s->over = 1; return; }
        SHA256_Update(&s->ctx, s->buf, s->len);
        s->len = 0;
        if (n > sizeof s->buf) { SHA256_Update(&s->ctx, p, n); return; }
    }
    copy(s->buf + s->len, p, n);
    s->len += n;
}

/* The separator and marker of one column (1 or 2 bytes): stored directly, no memcpy call. */
static inline void put_mark(stream *s, int first, uint8_t mark) {
    if (s->len + 2 > (s->collect ? ROW_MAX : sizeof s->buf)) {
        if (s->collect) { s->over = 1; return; }
        SHA256_Update(&s->ctx, s->buf, s->len);
        s->len = 0;
    }
    if (!first) s->buf[s->len++] = 0x1f;
    s->buf[s->len++] = mark;
}

static const int16_t NIBBLE[256] = {
    [0 ... 255] = 256,  /* not lower-case hex (a GNU range designator: this file is built by gcc) */
    ['0'] = 0, ['1'] = 1, ['2'] = 2, ['3'] = 3, ['4'] = 4, ['5'] = 5, ['6'] = 6, ['7'] = 7, ['8'] = 8, ['9'] = 9,
    ['a'] = 10, ['b'] = 11, ['c'] = 12, ['d'] = 13, ['e'] = 14, ['f'] = 15,
};

#if defined(__x86_64__)
#include <immintrin.h>
/* 16 bytes from 32 lower-case hex characters with SSSE3; 1 when one of them is not lower-case hex. */
__attribute__((target("ssse3"))) static int hex32(const uint8_t *src, uint8_t *out) {
    const __m128i zero = _mm_set1_epi8('0'), a = _mm_set1_epi8('a'), nine = _mm_set1_epi8(9), five = _mm_set1_epi8(5);
    const __m128i ten = _mm_set1_epi8(10), weights = _mm_set1_epi16(0x0110);  /* high nibble x16, low x1 */
    __m128i half[2];
    int ok = 0xffff;
    for (int h = 0; h < 2; h++) {
        __m128i v = _mm_loadu_si128((const __m128i *)(src + 16 * h));
        __m128i d = _mm_sub_epi8(v, zero), l = _mm_sub_epi8(v, a);
        __m128i is_d = _mm_cmpeq_epi8(_mm_min_epu8(d, nine), d), is_l = _mm_cmpeq_epi8(_mm_min_epu8(l, five), l);
        __m128i nib = _mm_or_si128(_mm_and_si128(is_d, d), _mm_and_si128(is_l, _mm_add_epi8(l, ten)));
        ok &= _mm_movemask_epi8(_mm_or_si128(is_d, is_l));
        half[h] = _mm_maddubs_epi16(nib, weights);
    }
    _mm_storeu_si128((__m128i *)out, _mm_packus_epi16(half[0], half[1]));
    return ok != 0xffff;
}
#endif

static int has_ssse3(void) {
#if defined(__x86_64__)
    static int known = -1;
    if (known < 0) known = __builtin_cpu_supports("ssse3") ? 1 : 0;
    return known;
#else
    return 0;
#endif
}

/* The row's hex text into out (width / 2 bytes); 1 when it is not lower-case hex of that width. */
static int hex_row(const uint8_t *src, int64_t len, int64_t width, uint8_t *out, int simd) {
    if (len != width) return 1;
    int bad = 0;
    int64_t i = 0;
#if defined(__x86_64__)
    if (simd)
        for (; i + 16 <= width / 2; i += 16) bad |= hex32(src + 2 * i, out + i);
#endif
    int v = 0;
    for (; i < width / 2; i++) {
        int x = (NIBBLE[src[2 * i]] << 4) | NIBBLE[src[2 * i + 1]];
        v |= x;
        out[i] = (uint8_t)x;
    }
    return bad || (v & 0x1100) != 0;
}

static size_t decimal(int64_t v, uint8_t *out) {
    uint8_t tmp[24];
    size_t n = 0, k = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do { tmp[n++] = (uint8_t)('0' + u % 10); u /= 10; } while (u);
    if (v < 0) out[k++] = '-';
    while (n) out[k++] = tmp[--n];
    return k;
}

/* Row i's leaf bytes (0x00 || canonical text) into s; with decode, its hex columns into their hex_out too
 * (once per row: a row hashed again after a collect overflow passes decode = 0). */
static void row_bytes(stream *s, column *cols, int64_t ncols, int64_t i, int decode, int simd) {
    static const uint8_t zero = 0;
    put(s, &zero, 1);
    for (int64_t k = 0; k < ncols; k++) {
        column *c = &cols[k];
        if (c->kind == 3) { put(s, c->data, (size_t)c->offset); continue; }
        int64_t j = i + c->offset;
        if (c->validity && !((c->validity[j >> 3] >> (j & 7)) & 1)) {
            put_mark(s, k == 0, 'n');
            if (decode && c->hex_out) memset(c->hex_out + i * (c->hex_width / 2), 0, (size_t)(c->hex_width / 2));
            continue;
        }
        put_mark(s, k == 0, 'v');
        if (c->kind == 0) {
            int32_t a = c->offsets[j], b = c->offsets[j + 1];
            if (b > a) put(s, c->data + a, (size_t)(b - a));
            if (decode && c->hex_out && !c->hex_bad)
                c->hex_bad = hex_row(c->data + a, b - a, c->hex_width, c->hex_out + i * (c->hex_width / 2), simd);
        } else if (c->kind == 1) {
            uint8_t d[24];
            put(s, d, decimal(((const int64_t *)c->data)[j], d));
        } else {
            int32_t v = c->indices[j], a = c->offsets[v], b = c->offsets[v + 1];
            if (b > a) put(s, c->data + a, (size_t)(b - a));
        }
    }
}

/* Leaf format 2 (docs/adr/0114): per column "n" when null, else "v" and the value's bytes, no separators —
 * text as its LEB128 length and UTF-8 bytes (kinds 0 and 2), an 8-byte integer little-endian (kind 1), a
 * fixed-width binary id as its bytes (kind 4: data, hex_width = the width; kind 0 with hex_out: the bytes it
 * decodes to); kind 3: bytes the caller rendered. The segment's constants come first as one prefix of whole
 * blocks whose SHA-256 state is computed once (leaf_hashes_v2), so a row costs only the blocks of its own
 * columns. */
static void put_head(stream *s, uint8_t mark, uint64_t len, int with_len) {
    uint8_t h[12];
    size_t k = 0;
    h[k++] = mark;
    if (with_len) do { uint8_t b = len & 0x7f; len >>= 7; h[k++] = b | (len ? 0x80 : 0); } while (len);
    put(s, h, k);
}

static void row_bytes_v2(stream *s, column *cols, int64_t ncols, int64_t i, int decode, int simd, int lead) {
    static const uint8_t zero = 0;
    if (lead) put(s, &zero, 1);
    for (int64_t k = 0; k < ncols; k++) {
        column *c = &cols[k];
        if (c->kind == 3) { put(s, c->data, (size_t)c->offset); continue; }
        int64_t j = i + c->offset;
        if (c->validity && !((c->validity[j >> 3] >> (j & 7)) & 1)) {
            put_head(s, 'n', 0, 0);
            if (decode && c->hex_out) memset(c->hex_out + i * (c->hex_width / 2), 0, (size_t)(c->hex_width / 2));
            continue;
        }
        if (c->kind == 0 && c->hex_out) {
            int32_t a = c->offsets[j], b = c->offsets[j + 1];
            size_t w = (size_t)(c->hex_width / 2);
            if (decode && !c->hex_bad) c->hex_bad = hex_row(c->data + a, b - a, c->hex_width, c->hex_out + i * w, simd);
            put_head(s, 'v', 0, 0);
            put(s, c->hex_out + i * w, w);
        } else if (c->kind == 0 || c->kind == 2) {
            int32_t a, b;
            if (c->kind == 0) a = c->offsets[j], b = c->offsets[j + 1];
            else { int32_t v = c->indices[j]; a = c->offsets[v], b = c->offsets[v + 1]; }
            put_head(s, 'v', (uint64_t)(b - a), 1);
            if (b > a) put(s, c->data + a, (size_t)(b - a));
        } else if (c->kind == 1) {
            uint8_t d[9];
            uint64_t v = (uint64_t)((const int64_t *)c->data)[j];
            d[0] = 'v';
            for (int q = 0; q < 8; q++) d[1 + q] = (uint8_t)(v >> (8 * q));
            put(s, d, 9);
        } else {  /* kind 4 */
            put_head(s, 'v', 0, 0);
            put(s, c->data + j * c->hex_width, (size_t)c->hex_width);
        }
    }
}

/* How a leaf is encoded: format 1 or 2; lead = the row bytes start with 0x00 (no precomputed prefix, else
 * base holds the SHA-256 state after the prefix of prefix_len bytes, a multiple of 64). */
typedef struct { int v2, lead; size_t prefix_len; const SHA256_CTX *base; } encoding;

static void encode_row(stream *s, const encoding *e, column *cols, int64_t ncols, int64_t i, int decode, int simd) {
    if (e->v2) row_bytes_v2(s, cols, ncols, i, decode, simd, e->lead);
    else row_bytes(s, cols, ncols, i, decode, simd);
}

/* Row i hashed by OpenSSL, streaming (any length). */
static void leaf_openssl(const encoding *e, column *cols, int64_t ncols, int64_t i, uint8_t *out, int decode,
                         int simd) {
    stream s;
    if (e->base) s.ctx = *e->base;
    else SHA256_Init(&s.ctx);
    s.len = 0, s.collect = 0, s.over = 0;
    encode_row(&s, e, cols, ncols, i, decode, simd);
    SHA256_Update(&s.ctx, s.buf, s.len);
    SHA256_Final(out, &s.ctx);
}

static int columns_ok(column *cols, int64_t ncols, int v2) {
    for (int64_t k = 0; k < ncols; k++) {
        column *c = &cols[k];
        if (c->kind < 0 || c->kind > (v2 ? 4 : 3) || (c->hex_out && (c->kind != 0 || c->hex_width <= 0)))
            return 0;
        if (c->kind == 4 && c->hex_width <= 0) return 0;
    }
    return 1;
}

static int has_sha_ni(void);
#if defined(__x86_64__)
static void leaf_pairs_ni(const encoding *e, const uint8_t *prefix, column *cols, int64_t ncols, int64_t nrows,
                          uint8_t *out, int simd);
#endif

static int leaves(const encoding *e, const uint8_t *prefix, column *cols, int64_t ncols, int64_t nrows, uint8_t *out,
                  int use_ni) {
    int simd = has_ssse3();
    if (!columns_ok(cols, ncols, e->v2)) return -1;
#if defined(__x86_64__)
    if (use_ni && has_sha_ni()) {
        leaf_pairs_ni(e, prefix, cols, ncols, nrows, out, simd);
        return 0;
    }
#endif
    for (int64_t i = 0; i < nrows; i++) leaf_openssl(e, cols, ncols, i, out + 32 * i, 1, simd);
    return 0;
}

/* use_ni: 0 forces OpenSSL (the tests compare both); the leaves are the same bytes either way. */
int leaf_hashes_with(column *cols, int64_t ncols, int64_t nrows, uint8_t *out, int use_ni) {
    encoding e = {0, 1, 0, NULL};
    return leaves(&e, NULL, cols, ncols, nrows, out, use_ni);
}

/* Format-2 leaves (docs/adr/0114). prefix: 0x00 and the segment's constants, zero-padded to a multiple of
 * 64 bytes, hashed once; every row's leaf is SHA-256(prefix || its row bytes). prefix_len 0 (no constants):
 * each row's bytes start with 0x00 themselves. */
int leaf_hashes_v2(column *cols, int64_t ncols, int64_t nrows, uint8_t *out, const uint8_t *prefix,
                   int64_t prefix_len, int use_ni) {
    if (prefix_len < 0 || prefix_len % 64) return -2;
    SHA256_CTX base;
    SHA256_Init(&base);
    if (prefix_len) SHA256_Update(&base, prefix, (size_t)prefix_len);
    encoding e = {1, prefix_len == 0, (size_t)prefix_len, prefix_len ? &base : NULL};
    return leaves(&e, prefix, cols, ncols, nrows, out, use_ni);
}

int leaf_hashes(column *cols, int64_t ncols, int64_t nrows, uint8_t *out) {
    return leaf_hashes_with(cols, ncols, nrows, out, 1);
}

#if defined(__x86_64__)
/* Node hashes with the CPU's SHA extensions, two nodes at a time: one SHA-256 block's rounds wait on the
 * previous round, so two independent messages interleaved keep the unit busy (~30 % less time per node
 * than OpenSSL's one-message-at-a-time calls here; docs/adr/0110). The SHA-256 compression function as
 * FIPS 180-4 defines it, on the sha256rnds2 / sha256msg1 / sha256msg2 instructions; tested against
 * OpenSSL and hashlib (tests/lineage/test_native.py). */
#define SHA_NI __attribute__((target("sha,sse4.1,ssse3")))

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};
static const uint32_t H256[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

typedef struct { __m128i abef, cdgh; } sha_state;  /* the eight state words in the instructions' order */

SHA_NI static inline sha_state sha_init(void) {
    __m128i dcba = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)H256), 0xB1);
    __m128i efgh = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)(H256 + 4)), 0x1B);
    sha_state st = {_mm_alignr_epi8(dcba, efgh, 8), _mm_blend_epi16(efgh, dcba, 0xF0)};
    return st;
}

SHA_NI static inline void sha_digest(sha_state st, uint8_t *out) {  /* the big-endian digest */
    const __m128i swap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i feba = _mm_shuffle_epi32(st.abef, 0x1B), dchg = _mm_shuffle_epi32(st.cdgh, 0xB1);
    _mm_storeu_si128((__m128i *)out, _mm_shuffle_epi8(_mm_blend_epi16(feba, dchg, 0xF0), swap));
    _mm_storeu_si128((__m128i *)(out + 16), _mm_shuffle_epi8(_mm_alignr_epi8(dchg, feba, 8), swap));
}

/* One 64-byte block into each of two states. w[j] holds message words 4j..4j+3 (mod 4 slots);
 * w[j] = msg2(msg1(w[j-4], w[j-3]) + (words 4j-7..4j-4), w[j-1]) for j >= 4. */
SHA_NI static inline void sha_block2(sha_state *s, const uint8_t *p, sha_state *u, const uint8_t *q) {
    const __m128i swap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    sha_state a = *s, b = *u;
    __m128i m[4], n[4];
    for (int j = 0; j < 4; j++) {
        m[j] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * j)), swap);
        n[j] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(q + 16 * j)), swap);
    }
    for (int j = 0; j < 16; j++) {
        if (j >= 4) {
            m[j & 3] = _mm_sha256msg2_epu32(_mm_add_epi32(_mm_sha256msg1_epu32(m[j & 3], m[(j + 1) & 3]),
                                                          _mm_alignr_epi8(m[(j + 3) & 3], m[(j + 2) & 3], 4)),
                                            m[(j + 3) & 3]);
            n[j & 3] = _mm_sha256msg2_epu32(_mm_add_epi32(_mm_sha256msg1_epu32(n[j & 3], n[(j + 1) & 3]),
                                                          _mm_alignr_epi8(n[(j + 3) & 3], n[(j + 2) & 3], 4)),
                                            n[(j + 3) & 3]);
        }
        __m128i k = _mm_loadu_si128((const __m128i *)(K256 + 4 * j));
        __m128i x = _mm_add_epi32(m[j & 3], k), y = _mm_add_epi32(n[j & 3], k);
        a.cdgh = _mm_sha256rnds2_epu32(a.cdgh, a.abef, x);  /* two rounds: the new ABEF */
        b.cdgh = _mm_sha256rnds2_epu32(b.cdgh, b.abef, y);
        a.abef = _mm_sha256rnds2_epu32(a.abef, a.cdgh, _mm_shuffle_epi32(x, 0x0E));  /* and two more */
        b.abef = _mm_sha256rnds2_epu32(b.abef, b.cdgh, _mm_shuffle_epi32(y, 0x0E));
    }
    s->abef = _mm_add_epi32(s->abef, a.abef); s->cdgh = _mm_add_epi32(s->cdgh, a.cdgh);
    u->abef = _mm_add_epi32(u->abef, b.abef); u->cdgh = _mm_add_epi32(u->cdgh, b.cdgh);
}

/* Nodes 2i and 2i + 1: each message 0x01 || left || right (65 bytes) is two blocks, the second
 * holding the last byte, the 0x80 pad and the bit length 520. */
SHA_NI static void node_pairs_ni(const uint8_t *pairs, int64_t m, uint8_t *out) {
    uint8_t a1[64], a2[64] = {0}, b1[64], b2[64] = {0};
    a2[1] = b2[1] = 0x80;
    a2[62] = b2[62] = 0x02;
    a2[63] = b2[63] = 0x08;
    a1[0] = b1[0] = 1;
    for (int64_t i = 0; i + 1 < m; i += 2) {
        memcpy(a1 + 1, pairs + 64 * i, 63);
        a2[0] = pairs[64 * i + 63];
        memcpy(b1 + 1, pairs + 64 * (i + 1), 63);
        b2[0] = pairs[64 * (i + 1) + 63];
        sha_state s = sha_init(), u = sha_init();
        sha_block2(&s, a1, &u, b1);
        sha_block2(&s, a2, &u, b2);
        sha_digest(s, out + 32 * i);
        sha_digest(u, out + 32 * (i + 1));
    }
}

/* One 64-byte block into one state (sha_block2's rounds for a single message). */
SHA_NI static inline void sha_block1(sha_state *s, const uint8_t *p) {
    const __m128i swap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    sha_state a = *s;
    __m128i m[4];
    for (int j = 0; j < 4; j++) m[j] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * j)), swap);
    for (int j = 0; j < 16; j++) {
        if (j >= 4)
            m[j & 3] = _mm_sha256msg2_epu32(_mm_add_epi32(_mm_sha256msg1_epu32(m[j & 3], m[(j + 1) & 3]),
                                                          _mm_alignr_epi8(m[(j + 3) & 3], m[(j + 2) & 3], 4)),
                                            m[(j + 3) & 3]);
        __m128i x = _mm_add_epi32(m[j & 3], _mm_loadu_si128((const __m128i *)(K256 + 4 * j)));
        a.cdgh = _mm_sha256rnds2_epu32(a.cdgh, a.abef, x);
        a.abef = _mm_sha256rnds2_epu32(a.abef, a.cdgh, _mm_shuffle_epi32(x, 0x0E));
    }
    s->abef = _mm_add_epi32(s->abef, a.abef); s->cdgh = _mm_add_epi32(s->cdgh, a.cdgh);
}

/* FIPS 180-4 padding after len message bytes in buf (which has room for 72 more), the message being
 * before + len bytes long (before: a prefix already compressed, a multiple of 64); returns the block count. */
static inline int64_t sha_pad(uint8_t *buf, size_t len, size_t before) {
    uint64_t bits = (uint64_t)(len + before) * 8;
    size_t end = (len + 9 + 63) / 64 * 64;
    buf[len] = 0x80;
    memset(buf + len + 1, 0, end - 8 - len - 1);
    for (int k = 0; k < 8; k++) buf[end - 1 - k] = (uint8_t)(bits >> (8 * k));
    return (int64_t)(end / 64);
}

/* Leaves two rows at a time on the SHA instructions: both rows' bytes are collected and padded, their common
 * blocks compressed interleaved (sha_block2), the longer one's rest alone. A row longer than ROW_MAX goes
 * through OpenSSL. Measured on the 2-core bench machine: the leaves of 2 M mapped edges 0.77 -> 0.62 CPU-s,
 * ~20 % less than OpenSSL's one-row-at-a-time calls (bench/README-lineage.md, 2026-12-03). */
SHA_NI static void leaf_pairs_ni(const encoding *e, const uint8_t *prefix, column *cols, int64_t ncols, int64_t nrows,
                                 uint8_t *out, int simd) {
    stream a, b;
    a.collect = b.collect = 1;
    sha_state start = sha_init();  /* after the prefix, when there is one: once per call */
    for (size_t r = 0; r < e->prefix_len; r += 64) sha_block1(&start, prefix + r);
    for (int64_t i = 0; i < nrows; i += 2) {
        int two = i + 1 < nrows;
        a.len = 0, a.over = 0, b.len = 0, b.over = 0;
        encode_row(&a, e, cols, ncols, i, 1, simd);
        if (two) encode_row(&b, e, cols, ncols, i + 1, 1, simd);
        if (a.over) leaf_openssl(e, cols, ncols, i, out + 32 * i, 0, simd);
        if (two && b.over) leaf_openssl(e, cols, ncols, i + 1, out + 32 * (i + 1), 0, simd);
        int ha = !a.over, hb = two && !b.over;
        int64_t na = ha ? sha_pad(a.buf, a.len, e->prefix_len) : 0, nb = hb ? sha_pad(b.buf, b.len, e->prefix_len) : 0;
        int64_t k = 0;
        sha_state s = start, u = start;
        for (; k < na && k < nb; k++) sha_block2(&s, a.buf + 64 * k, &u, b.buf + 64 * k);
        for (int64_t r = k; r < na; r++) sha_block1(&s, a.buf + 64 * r);
        for (int64_t r = k; r < nb; r++) sha_block1(&u, b.buf + 64 * r);
        if (ha) sha_digest(s, out + 32 * i);
        if (hb) sha_digest(u, out + 32 * (i + 1));
    }
}
#endif

static int has_sha_ni(void) {
#if defined(__x86_64__)
    static int known = -1;
    if (known < 0) known = __builtin_cpu_supports("sha") && __builtin_cpu_supports("sse4.1") ? 1 : 0;
    return known;
#else
    return 0;
#endif
}

static void node_hashes_openssl(const uint8_t *pairs, int64_t m, uint8_t *out) {
    static const uint8_t one = 1;
    SHA256_CTX ctx;
    for (int64_t i = 0; i < m; i++) {
        SHA256_Init(&ctx);
        SHA256_Update(&ctx, &one, 1);
        SHA256_Update(&ctx, pairs + 64 * i, 64);
        SHA256_Final(out + 32 * i, &ctx);
    }
}

/* use_ni: 0 forces OpenSSL (the tests compare both). */
void node_hashes_with(const uint8_t *pairs, int64_t m, uint8_t *out, int use_ni) {
#if defined(__x86_64__)
    if (use_ni && has_sha_ni()) {
        node_pairs_ni(pairs, m, out);
        if (m % 2) node_hashes_openssl(pairs + 64 * (m - 1), 1, out + 32 * (m - 1));
        return;
    }
#endif
    node_hashes_openssl(pairs, m, out);
}

void node_hashes(const uint8_t *pairs, int64_t m, uint8_t *out) { node_hashes_with(pairs, m, out, 1); }

/* n bytes from 2n lower-case hex characters; returns the index of the first character pair that is
 * not lower-case hex (the caller then keeps the column as text), or -1 when all were. */
int64_t hex_decode(const uint8_t *src, int64_t n, uint8_t *dst) {
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {  /* branch-free; a bad character is looked for only at the end */
        int v = (NIBBLE[src[2 * i]] << 4) | NIBBLE[src[2 * i + 1]];
        bad |= v;
        dst[i] = (uint8_t)v;
    }
    if (!(bad & 0x1100)) return -1;
    for (int64_t i = 0; i < n; i++)
        if ((NIBBLE[src[2 * i]] | NIBBLE[src[2 * i + 1]]) & 256) return i;
    return -1;
}

/* 2n lower-case hex characters from n bytes. */
void hex_encode(const uint8_t *src, int64_t n, uint8_t *dst) {
    static const char digits[] = "0123456789abcdef";
    for (int64_t i = 0; i < n; i++) {
        dst[2 * i] = (uint8_t)digits[src[i] >> 4];
        dst[2 * i + 1] = (uint8_t)digits[src[i] & 15];
    }
}
