/* ISO 8601 text of Arrow timestamps in microseconds, one C loop per column, for
 * connectors/base/identity.py (source positions such as updated_at): "YYYY-MM-DDTHH:MM:SS.ffffff",
 * exactly what Arrow's strftime("%Y-%m-%dT%H:%M:%S") writes for unit "us", ~50x sooner.
 * Years 0..9999 only: identity.py checks the range and uses Arrow outside it.
 * Civil-from-days after H. Hinnant's public-domain algorithm (proleptic Gregorian calendar).
 */
#include <stdint.h>

static void two(uint8_t *p, int64_t v) { p[0] = (uint8_t)('0' + v / 10); p[1] = (uint8_t)('0' + v % 10); }

void iso_us(const int64_t *us, int64_t n, uint8_t *out) {
    for (int64_t i = 0; i < n; i++) {
        int64_t t = us[i];
        int64_t days = t >= 0 ? t / 86400000000LL : -((-t + 86400000000LL - 1) / 86400000000LL);
        int64_t rest = t - days * 86400000000LL; /* 0 .. one day in us */
        int64_t z = days + 719468;
        int64_t era = (z >= 0 ? z : z - 146096) / 146097;
        int64_t doe = z - era * 146097;
        int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        int64_t y = yoe + era * 400;
        int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        int64_t mp = (5 * doy + 2) / 153;
        int64_t d = doy - (153 * mp + 2) / 5 + 1;
        int64_t m = mp < 10 ? mp + 3 : mp - 9;
        if (m <= 2) y += 1;
        uint8_t *p = out + 26 * i;
        two(p, y / 100); two(p + 2, y % 100); p[4] = '-'; two(p + 5, m); p[7] = '-'; two(p + 8, d); p[10] = 'T';
        int64_t s = rest / 1000000, f = rest % 1000000;
        two(p + 11, s / 3600); p[13] = ':'; two(p + 14, (s / 60) % 60); p[16] = ':'; two(p + 17, s % 60);
        p[19] = '.';
        for (int k = 25; k > 19; k--) { p[k] = (uint8_t)('0' + f % 10); f /= 10; }
    }
}
