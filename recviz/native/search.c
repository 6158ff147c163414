/* Look-ups whose numpy form is a binary search over a whole log, here in time that does not grow
 * with the log: a search inside one user's segment, and a hash set.
 *
 * Why: np.searchsorted of q queries in n sorted keys costs q·log n, with every step a cache miss
 * once n is large; the split's candidate draw (1M users × 100 ranks into 100M keys at 100M rows)
 * and its membership test (every row against the held-out pairs) grew faster than the rows.
 *
 * nth_unseen_i64(gaps, indptr, n_users, users, ranks, rows, m, out): for each row b and column c,
 *   out = ranks[b·m+c] + #{j in [indptr[u], indptr[u+1]) : gaps[j] ≤ u·(n_items+1) + ranks[b·m+c]}
 *   with u = users[b] — `SeenItems.nth_unseen` (the user's segment holds every key that can
 *   compare either way; keys before it are smaller, after it larger). Returns 0, or -1 (nothing
 *   written) for a user out of range.
 *
 * seen_pairs_i64(items, indptr, n_users, n_items, users, queries, n, out): out[k] = queries[k] is
 *   among user users[k]'s items — items[indptr[u]:indptr[u+1]], sorted — by a search of that
 *   segment only (`SeenItems.contains`). Returns 0, or -1 (nothing written) for an id out of range.
 *
 * member_i64(values, n, of, m, table, size, out): out[i] = values[i] occurs in of[0..m), through
 *   an open-addressing hash table of `size` slots (a power of two ≥ 2m, the caller's scratch).
 *   Returns 0, or -2 (nothing written) when a key is negative (the empty-slot mark).
 */
#include <stdint.h>

int64_t nth_unseen_i64(const int64_t *gaps, const int64_t *indptr, int64_t n_users, int64_t n_items,
                       const int64_t *users, const int64_t *ranks, int64_t rows, int64_t m, int64_t *out) {
    for (int64_t b = 0; b < rows; b++)
        if (users[b] < 0 || users[b] >= n_users) return -1;
    for (int64_t b = 0; b < rows; b++) {
        const int64_t u = users[b], lo = indptr[u], hi = indptr[u + 1], base = u * (n_items + 1);
        for (int64_t c = 0; c < m; c++) {
            const int64_t r = ranks[b * m + c], q = base + r;
            int64_t a = lo, z = hi;  // first position in [lo, hi) whose key is > q
            while (a < z) {
                const int64_t mid = a + (z - a) / 2;
                if (gaps[mid] <= q) a = mid + 1;
                else z = mid;
            }
            out[b * m + c] = r + (a - lo);
        }
    }
    return 0;
}

int64_t seen_pairs_i64(const int64_t *items, const int64_t *indptr, int64_t n_users, int64_t n_items,
                       const int64_t *users, const int64_t *queries, int64_t n, uint8_t *out) {
    for (int64_t k = 0; k < n; k++)
        if (users[k] < 0 || users[k] >= n_users || queries[k] < 0 || queries[k] >= n_items) return -1;
    for (int64_t k = 0; k < n; k++) {
        int64_t a = indptr[users[k]], z = indptr[users[k] + 1];  // first position whose item is ≥ the query
        const int64_t q = queries[k];
        while (a < z) {
            const int64_t mid = a + (z - a) / 2;
            if (items[mid] < q) a = mid + 1;
            else z = mid;
        }
        out[k] = a < indptr[users[k] + 1] && items[a] == q;
    }
    return 0;
}

static inline uint64_t slot_of(int64_t key, int shift) {
    return ((uint64_t)key * 0x9E3779B97F4A7C15ull) >> shift;  // Fibonacci hashing: the product's top bits
}

int64_t member_i64(const int64_t *values, int64_t n, const int64_t *of, int64_t m, int64_t *table, int64_t size,
                   uint8_t *out) {
    for (int64_t i = 0; i < m; i++)
        if (of[i] < 0) return -2;
    for (int64_t i = 0; i < n; i++)
        if (values[i] < 0) return -2;
    const uint64_t mask = (uint64_t)size - 1;
    int shift = 64;
    while (((uint64_t)1 << (64 - shift)) < (uint64_t)size) shift--;
    for (int64_t s = 0; s < size; s++) table[s] = -1;
    for (int64_t i = 0; i < m; i++) {
        uint64_t s = slot_of(of[i], shift);
        while (table[s] >= 0 && table[s] != of[i]) s = (s + 1) & mask;
        table[s] = of[i];
    }
    for (int64_t i = 0; i < n; i++) {
        uint64_t s = slot_of(values[i], shift);
        while (table[s] >= 0 && table[s] != values[i]) s = (s + 1) & mask;
        out[i] = table[s] == values[i];
    }
    return 0;
}
