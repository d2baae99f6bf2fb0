/* Bulk SHA-256 over Arrow text columns for connectors/base/hashing.py: one C loop per batch instead
 * of one SQL or Python call per row. Built on first use by connectors/base/cbuild.py (gcc + OpenSSL's
 * libcrypto); when it cannot be built, hashing.py computes the same hex digests in DuckDB.
 *
 * joined_hex: hex(SHA-256(prefix || part_0 || sep || part_1 || ... )), nulls as empty text, cut to
 *             `hexlen` characters (the record ids of connectors/base/identity.py, output record ids).
 * hmac_hex:   hex(HMAC-SHA256(key, value)) (RFC 2104) of one text column (subject pseudonyms).
 * Columns are Arrow utf8 arrays (int32 offsets), read straight from their buffers.
 */
#include <openssl/sha.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    int64_t offset;          /* the Arrow array's offset */
    const uint8_t *validity; /* null when no value is null */
    const int32_t *offsets;
    const uint8_t *data;
} text_column;

static const char HEX[] = "0123456789abcdef";

static void to_hex(const uint8_t *digest, int64_t hexlen, uint8_t *out) {
    for (int64_t k = 0; k < hexlen; k++) {
        uint8_t b = digest[k >> 1];
        out[k] = (uint8_t)HEX[(k & 1) ? (b & 15) : (b >> 4)];
    }
}

static int is_null(const text_column *c, int64_t j) {
    return c->validity && !((c->validity[j >> 3] >> (j & 7)) & 1);
}

/* Bytes gathered before one SHA256_Update: a call per small piece costs more than the hashing. */
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

static void finish(stream *s, uint8_t *digest) {
    SHA256_Update(&s->ctx, s->buf, s->len);
    SHA256_Final(digest, &s->ctx);
}

void joined_hex(const text_column *cols, int64_t ncols, int64_t nrows, const uint8_t *prefix,
                int64_t prefix_len, uint8_t sep, int64_t hexlen, uint8_t *out) {
    stream s;
    uint8_t digest[32];
    for (int64_t i = 0; i < nrows; i++) {
        SHA256_Init(&s.ctx);
        s.len = 0;
        if (prefix_len) put(&s, prefix, (size_t)prefix_len);
        for (int64_t k = 0; k < ncols; k++) {
            const text_column *c = &cols[k];
            int64_t j = i + c->offset;
            if (k) put(&s, &sep, 1);
            if (is_null(c, j)) continue;
            int32_t a = c->offsets[j], b = c->offsets[j + 1];
            if (b > a) put(&s, c->data + a, (size_t)(b - a));
        }
        finish(&s, digest);
        to_hex(digest, hexlen, out + hexlen * i);
    }
}

void hmac_hex(const text_column *col, int64_t nrows, const uint8_t *key64, uint8_t *out) {
    uint8_t ipad[64], opad[64], inner[32], digest[32];
    SHA256_CTX in0, out0, ctx;
    for (int k = 0; k < 64; k++) { ipad[k] = key64[k] ^ 0x36; opad[k] = key64[k] ^ 0x5c; }
    SHA256_Init(&in0); SHA256_Update(&in0, ipad, 64);
    SHA256_Init(&out0); SHA256_Update(&out0, opad, 64);
    for (int64_t i = 0; i < nrows; i++) {
        int64_t j = i + col->offset;
        ctx = in0;
        if (!is_null(col, j)) {
            int32_t a = col->offsets[j], b = col->offsets[j + 1];
            if (b > a) SHA256_Update(&ctx, col->data + a, (size_t)(b - a));
        }
        SHA256_Final(inner, &ctx);
        ctx = out0;
        SHA256_Update(&ctx, inner, 32);
        SHA256_Final(digest, &ctx);
        to_hex(digest, 64, out + 64 * i);
    }
}

/* row_hex: hex(SHA-256(canonical row text)) for the payload hash of a flat row (identity.py):
 * per column, in the order given: label (its name and U+001E), then "n" for null or "v" and the
 * value's text; the columns joined by U+001F. Labels come as one blob with their lengths. */
void row_hex(const text_column *cols, int64_t ncols, int64_t nrows, const uint8_t *labels,
             const int64_t *label_lens, uint8_t *out) {
    static const uint8_t sep = 0x1f, nul = 'n', val = 'v';
    stream s;
    uint8_t digest[32];
    for (int64_t i = 0; i < nrows; i++) {
        SHA256_Init(&s.ctx);
        s.len = 0;
        const uint8_t *label = labels;
        for (int64_t k = 0; k < ncols; k++) {
            const text_column *c = &cols[k];
            int64_t j = i + c->offset;
            if (k) put(&s, &sep, 1);
            put(&s, label, (size_t)label_lens[k]);
            label += label_lens[k];
            if (is_null(c, j)) { put(&s, &nul, 1); continue; }
            put(&s, &val, 1);
            int32_t a = c->offsets[j], b = c->offsets[j + 1];
            if (b > a) put(&s, c->data + a, (size_t)(b - a));
        }
        finish(&s, digest);
        to_hex(digest, 64, out + 64 * i);
    }
}
