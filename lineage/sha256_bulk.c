/* Bulk RFC 6962 hashing for lineage/merkle.py: one C loop over a whole segment instead of one
 * Python or SQL call per edge. Compiled on first use by lineage/native.py (gcc + OpenSSL's
 * libcrypto); when it cannot be built, merkle.py hashes in DuckDB instead, with identical results.
 *
 * leaf_hashes: leaf = SHA-256(0x00 || canonical text of the row), where the canonical text is
 * docs/adr/0102: per column "n" when null, else "v" + the value as text (integers in decimal,
 * timestamps as integer microseconds since the epoch), the columns joined by U+001F.
 * node_hashes: node = SHA-256(0x01 || left || right) for m pairs of 32-byte digests.
 * hex_decode / hex_encode: lower-case hex text <-> bytes, for the binary id columns of segment files
 * (lineage/segment_file.py, docs/adr/0107); the leaf text above is always the hex text.
 */
#include <openssl/sha.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    int64_t kind;            /* 0: utf8 with int32 offsets, 1: int64 (integers, timestamps in us) */
    int64_t offset;          /* the Arrow array's offset */
    const uint8_t *validity; /* null when no value is null */
    const int32_t *offsets;  /* kind 0 */
    const uint8_t *data;     /* kind 0: the characters; kind 1: the int64 values */
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

static size_t decimal(int64_t v, uint8_t *out) {
    uint8_t tmp[24];
    size_t n = 0, k = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do { tmp[n++] = (uint8_t)('0' + u % 10); u /= 10; } while (u);
    if (v < 0) out[k++] = '-';
    while (n) out[k++] = tmp[--n];
    return k;
}

int leaf_hashes(const column *cols, int64_t ncols, int64_t nrows, uint8_t *out) {
    static const uint8_t zero = 0, sep = 0x1f, nul = 'n', val = 'v';
    stream s;
    for (int64_t i = 0; i < nrows; i++) {
        SHA256_Init(&s.ctx);
        s.len = 0;
        put(&s, &zero, 1);
        for (int64_t k = 0; k < ncols; k++) {
            const column *c = &cols[k];
            int64_t j = i + c->offset;
            if (k) put(&s, &sep, 1);
            if (c->validity && !((c->validity[j >> 3] >> (j & 7)) & 1)) { put(&s, &nul, 1); continue; }
            put(&s, &val, 1);
            if (c->kind == 0) {
                int32_t a = c->offsets[j], b = c->offsets[j + 1];
                if (b > a) put(&s, c->data + a, (size_t)(b - a));
            } else if (c->kind == 1) {
                uint8_t d[24];
                put(&s, d, decimal(((const int64_t *)c->data)[j], d));
            } else {
                return -1;
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
static const int16_t NIBBLE[256] = {
    [0 ... 255] = 256,  /* not lower-case hex (a GNU range designator: this file is built by gcc) */
    ['0'] = 0, ['1'] = 1, ['2'] = 2, ['3'] = 3, ['4'] = 4, ['5'] = 5, ['6'] = 6, ['7'] = 7, ['8'] = 8, ['9'] = 9,
    ['a'] = 10, ['b'] = 11, ['c'] = 12, ['d'] = 13, ['e'] = 14, ['f'] = 15,
};

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
