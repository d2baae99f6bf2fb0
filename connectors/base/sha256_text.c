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

void joined_hex(const text_column *cols, int64_t ncols, int64_t nrows, const uint8_t *prefix,
                int64_t prefix_len, uint8_t sep, int64_t hexlen, uint8_t *out) {
    SHA256_CTX base, ctx;
    uint8_t digest[32];
    SHA256_Init(&base);
    if (prefix_len) SHA256_Update(&base, prefix, (size_t)prefix_len);
    for (int64_t i = 0; i < nrows; i++) {
        ctx = base;
        for (int64_t k = 0; k < ncols; k++) {
            const text_column *c = &cols[k];
            int64_t j = i + c->offset;
            if (k) SHA256_Update(&ctx, &sep, 1);
            if (is_null(c, j)) continue;
            int32_t a = c->offsets[j], b = c->offsets[j + 1];
            if (b > a) SHA256_Update(&ctx, c->data + a, (size_t)(b - a));
        }
        SHA256_Final(digest, &ctx);
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
    SHA256_CTX ctx;
    uint8_t digest[32];
    for (int64_t i = 0; i < nrows; i++) {
        SHA256_Init(&ctx);
        const uint8_t *label = labels;
        for (int64_t k = 0; k < ncols; k++) {
            const text_column *c = &cols[k];
            int64_t j = i + c->offset;
            if (k) SHA256_Update(&ctx, &sep, 1);
            SHA256_Update(&ctx, label, (size_t)label_lens[k]);
            label += label_lens[k];
            if (is_null(c, j)) { SHA256_Update(&ctx, &nul, 1); continue; }
            SHA256_Update(&ctx, &val, 1);
            int32_t a = c->offsets[j], b = c->offsets[j + 1];
            if (b > a) SHA256_Update(&ctx, c->data + a, (size_t)(b - a));
        }
        SHA256_Final(digest, &ctx);
        to_hex(digest, 64, out + 64 * i);
    }
}
