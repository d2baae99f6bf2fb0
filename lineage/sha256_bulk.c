/* Bulk RFC 6962 hashing for lineage/merkle.py: one C loop over a whole segment instead of one
 * Python or SQL call per edge. Compiled on first use by lineage/native.py (gcc + OpenSSL's
 * libcrypto); when it cannot be built, merkle.py hashes in DuckDB instead, with identical results.
 *
 * leaf_hashes: leaf = SHA-256(0x00 || canonical text of the row), where the canonical text is
 * docs/adr/0102: per column "n" when null, else "v" + the value as text (integers in decimal,
 * timestamps as integer microseconds since the epoch), the columns joined by U+001F.
 * node_hashes: node = SHA-256(0x01 || left || right) for m pairs of 32-byte digests.
 * hex_decode / hex_encode: lower-case hex text <-> bytes, for the binary id columns of segment files
 * (lineage/segment_file.py, docs/adr/0107); the leaf text above is always the hex text. leaf_hashes can
 * decode those columns in the same pass (it reads the same characters; docs/adr/0109).
 */
#include <openssl/sha.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    int64_t kind;            /* 0: utf8 with int32 offsets, 1: int64 (integers, timestamps in us),
                                2: dictionary (int32 indices) over utf8 without nulls */
    int64_t offset;          /* the Arrow array's offset (kind 2: of the indices) */
    const uint8_t *validity; /* null when no value is null */
    const int32_t *offsets;  /* kind 0; kind 2: the dictionary's offsets (its own offset already applied) */
    const uint8_t *data;     /* kind 0: the characters; kind 1: the int64 values; kind 2: the dictionary's */
    const int32_t *indices;  /* kind 2 */
    uint8_t *hex_out;        /* kind 0, optional: each row's hex text decoded to hex_width / 2 bytes here
                                (a null row as zero bytes), for the binary id columns of segment files */
    int64_t hex_width;       /* characters per value when hex_out is set */
    int64_t hex_bad;         /* set to 1 when a value is not lower-case hex of hex_width characters */
} column;

typedef struct { SHA256_CTX ctx; uint8_t buf[4096]; size_t len; } stream;

static void put(stream *s, const uint8_t *p, size_t n) {
    if (s->len + n > sizeof s->buf) {
        SHA256_Update(&s->ctx, s->buf, s->len);
        s->len = 0;
        if (n > sizeof s->buf) { SHA256_Update(&s->ctx, p, n); return; }
    }
    memcpy(s->buf + s->len, p, n);
    s->len += n;
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

int leaf_hashes(column *cols, int64_t ncols, int64_t nrows, uint8_t *out) {
    static const uint8_t zero = 0, sep_val[2] = {0x1f, 'v'}, sep_nul[2] = {0x1f, 'n'};
    stream s;
    int simd = has_ssse3();
    for (int64_t k = 0; k < ncols; k++)
        if (cols[k].kind < 0 || cols[k].kind > 2 || (cols[k].hex_out && (cols[k].kind != 0 || cols[k].hex_width <= 0)))
            return -1;
    for (int64_t i = 0; i < nrows; i++) {
        SHA256_Init(&s.ctx);
        s.len = 0;
        put(&s, &zero, 1);
        for (int64_t k = 0; k < ncols; k++) {
            column *c = &cols[k];
            int64_t j = i + c->offset;
            size_t skip = k ? 0 : 1;  /* the first column has no separator before it */
            if (c->validity && !((c->validity[j >> 3] >> (j & 7)) & 1)) {
                put(&s, sep_nul + skip, 2 - skip);
                if (c->hex_out) memset(c->hex_out + i * (c->hex_width / 2), 0, (size_t)(c->hex_width / 2));
                continue;
            }
            put(&s, sep_val + skip, 2 - skip);
            if (c->kind == 0) {
                int32_t a = c->offsets[j], b = c->offsets[j + 1];
                if (b > a) put(&s, c->data + a, (size_t)(b - a));
                if (c->hex_out && !c->hex_bad)
                    c->hex_bad = hex_row(c->data + a, b - a, c->hex_width, c->hex_out + i * (c->hex_width / 2), simd);
            } else if (c->kind == 1) {
                uint8_t d[24];
                put(&s, d, decimal(((const int64_t *)c->data)[j], d));
            } else {
                int32_t v = c->indices[j], a = c->offsets[v], b = c->offsets[v + 1];
                if (b > a) put(&s, c->data + a, (size_t)(b - a));
            }
        }
        SHA256_Update(&s.ctx, s.buf, s.len);
        SHA256_Final(out + 32 * i, &s.ctx);
    }
    return 0;
}

void node_hashes(const uint8_t *pairs, int64_t m, uint8_t *out) {
    static const uint8_t one = 1;
    SHA256_CTX ctx;
    for (int64_t i = 0; i < m; i++) {
        SHA256_Init(&ctx);
        SHA256_Update(&ctx, &one, 1);
        SHA256_Update(&ctx, pairs + 64 * i, 64);
        SHA256_Final(out + 32 * i, &ctx);
    }
}

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
