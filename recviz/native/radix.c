/* A stable sort of non-negative 64-bit integer keys (or unsigned ones), least-significant-digit radix
 * sort, digits of at most 9 bits (as many passes as the largest key's bits need, a pass skipped
 * where every key has the same digit), optionally carrying each key's position along. Time is
 * n × passes, and passes grow with the keys' bits (user × item pair keys: 36 bits at 10M rows,
 * 42 at 100M). Why 9-bit digits: 2,048 buckets (11 bits) scatter to more pages than the TLB holds —
 * at 100M random 42-bit keys 17.3 ns a key, against 14.1 with 9 bits (5 passes); at 10M both 9.1.
 *
 * Why: the import, the split and the evaluation order and group rows by integer codes (user ×
 * item pair keys, (pair, time) keys). numpy's sort is a comparison sort, n log n, and on this
 * 2-core VM its cost per element grows ~15-20 % per 10× rows, so those steps grew 12.7-13.5× per
 * 10× where the acceptance asks ≤ 12×. A radix sort's cost is passes × n, no comparisons: ~2×
 * faster than numpy's stable argsort on this VM at 10M and 100M keys.
 *
 * radix_sort_i64(keys, order_in, n, keys_out, order_out, keys_tmp, order_tmp, is_unsigned):
 *   keys_out[i] = the i-th smallest of keys[order_in[j]] (of keys[j] when order_in is NULL);
 *   order_out (NULL: not wanted) = the positions (order_in[j], or j) in that order, equal keys in
 *   their input order (stable) — np.argsort(keys[order_in], kind="stable") mapped through order_in.
 *   keys_tmp, order_tmp: the caller's scratch of n each (order_tmp NULL when order_out is). With
 *   order_in NULL, keys_out may be keys itself: sorted in place. is_unsigned: the keys are uint64
 *   (all 64 bits), else int64 and refused when negative.
 * Returns 0; -1 when the histograms' memory could not be had; -2 when a key is negative — both
 * before anything is written, so the caller can sort another way.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DIGIT 9

int64_t radix_sort_i64(const int64_t *keys, const int64_t *order_in, int64_t n, int64_t *keys_out,
                       int64_t *order_out, int64_t *keys_tmp, int64_t *order_tmp, int64_t is_unsigned) {
    uint64_t all = 0;
    for (int64_t j = 0; j < n; j++) {  // checked first: refused input leaves everything as it was
        const int64_t key = keys[order_in ? order_in[j] : j];
        if (key < 0 && !is_unsigned) return -2;
        all |= (uint64_t)key;
    }
    int bits = 0;
    while (bits < 64 && (all >> bits)) bits++;
    const int passes = bits ? (bits + MAX_DIGIT - 1) / MAX_DIGIT : 1, width = (bits + passes - 1) / passes;
    const int64_t buckets = (int64_t)1 << width;
    const uint64_t mask = (uint64_t)buckets - 1;
    int64_t *counts = calloc((size_t)(passes * buckets), sizeof(int64_t));
    if (!counts) return -1;
    uint64_t *k0 = (uint64_t *)keys_out, *k1 = (uint64_t *)keys_tmp;
    int64_t *i0 = order_out, *i1 = order_tmp;
    for (int64_t j = 0; j < n; j++) {
        const int64_t at = order_in ? order_in[j] : j;
        k0[j] = (uint64_t)keys[at];
        if (i0) i0[j] = at;
    }
    if (bits == 0 || n < 2) {
        free(counts);
        return 0;
    }
    for (int64_t j = 0; j < n; j++)  // every pass's histogram in one read
        for (int p = 0; p < passes; p++) counts[p * buckets + ((k0[j] >> (p * width)) & mask)]++;
    uint64_t *ks = k0, *kd = k1;
    int64_t *is = i0, *id = i1;
    for (int p = 0; p < passes; p++) {
        int64_t *c = counts + p * buckets, total = 0;
        const int shift = p * width;
        if (c[(ks[0] >> shift) & mask] == n) continue;  // one digit for all: this pass moves nothing
        for (int64_t b = 0; b < buckets; b++) {  // counts → each bucket's first place
            const int64_t here = c[b];
            c[b] = total;
            total += here;
        }
        for (int64_t j = 0; j < n; j++) {
            const int64_t to = c[(ks[j] >> shift) & mask]++;
            kd[to] = ks[j];
            if (is) id[to] = is[j];
        }
        uint64_t *kt = ks;
        ks = kd, kd = kt;
        int64_t *it = is;
        is = id, id = it;
    }
    if (ks != k0) {  // the last pass wrote the second buffer
        memcpy(k0, ks, (size_t)n * sizeof(uint64_t));
        if (i0) memcpy(i0, is, (size_t)n * sizeof(int64_t));
    }
    free(counts);
    return 0;
}
