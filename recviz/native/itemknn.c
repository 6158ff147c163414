/* ItemKNN's score of (user, item) pairs: score(u, j) = the sum of sim[j, i] over j's kept
 * neighbours i that user u has, in the order of j's neighbour list (increasing i), in float32.
 *
 * The same numbers as `ItemKNN.score`'s numpy path and as a row of `score_all` (a CSR product,
 * which also sums in increasing i in float32): additions only, in the same order, and the file is
 * compiled without FMA contraction or fast-math.
 *
 * Work: per user, its seen items are marked in a byte mask over the items (set, then cleared), and
 * each of its pairs reads its candidate's neighbour list against the mask: O(pairs × neighbours +
 * the users' seen items), memory O(items) bytes. In numpy the same look-ups took ~10 passes over
 * pairs × neighbours temporaries; at 10^10 look-ups (1M users × 101 candidates × 100 neighbours)
 * that was hours.
 *
 * sim_indptr[n_items + 1] (int64), sim_indices (int32, sorted per row), sim_data (float32);
 * seen_indptr[n_users + 1] (int64), seen_items (int32, the user's items); users[n_rows] (int64),
 * items[n_rows * m] (int64; NULL: every item, m = n_items, in id order — a user's whole row of
 * scores without the transposed similarity's memory), out[n_rows * m] (float32), mask[n_items]
 * (zeroed bytes, left zeroed). Returns 0, or -1 (nothing written) when an id is out of range.
 */
#include <stdint.h>

int64_t knn_pair_scores_f32(const int64_t *sim_indptr, const int32_t *sim_indices, const float *sim_data,
                            int64_t n_items, int64_t n_users, const int64_t *seen_indptr, const int32_t *seen_items,
                            const int64_t *users, const int64_t *items, int64_t n_rows, int64_t m, float *out,
                            unsigned char *mask) {
    for (int64_t r = 0; r < n_rows; r++) {
        if (users[r] < 0 || users[r] >= n_users) return -1;
        for (int64_t c = 0; items && c < m; c++)
            if (items[r * m + c] < 0 || items[r * m + c] >= n_items) return -1;
    }
    if (!items && m != n_items) return -1;
    for (int64_t r = 0; r < n_rows; r++) {
        const int32_t *seen = seen_items + seen_indptr[users[r]];
        const int64_t n_seen = seen_indptr[users[r] + 1] - seen_indptr[users[r]];
        for (int64_t s = 0; s < n_seen; s++) mask[seen[s]] = 1;
        for (int64_t c = 0; c < m; c++) {
            const int64_t j = items ? items[r * m + c] : c;
            float total = 0.0f;
            for (int64_t e = sim_indptr[j]; e < sim_indptr[j + 1]; e++)
                if (mask[sim_indices[e]]) total += sim_data[e];
            out[r * m + c] = total;
        }
        for (int64_t s = 0; s < n_seen; s++) mask[seen[s]] = 0;
    }
    return 0;
}
