/* GMF's training step on one batch, forward and backward in one pass: the hand-written step of
 * recviz.models.ncf_step for a GMF network (no MLP) whose tables are dense float32 on the CPU.
 * The optimiser then steps as usual on the gradients written here.
 *
 *   p_b = U[u_b] ⊙ I[i_b];  z_b = p_b · h + c;  loss = mean_b softplus(z_b) − y_b·z_b
 *   dz_b = (σ(z_b) − y_b) / B
 *   gU[u_b] += (dz_b·h) ⊙ I[i_b];  gI[i_b] += (dz_b·h) ⊙ U[u_b]   (zeroed first; repeats summed in batch order)
 *   — or, for a row-sparse table (bit 0 of `per_row` for U, bit 1 for I), its gradient as torch's sparse
 *   embedding backward gives it: one row per batch position, gU[b] = (dz_b·h) ⊙ I[i_b] ([batch, dim]),
 *   the positions' ids being the batch's own
 *   gh = Σ_b dz_b·p_b;  gc = Σ_b dz_b
 *
 * The same float32 operations as the torch step, except the order of the sums in the dot products
 * (torch's matrix products choose theirs): results agree to float32 rounding, not bit for bit.
 * Why C: the torch step is ~20 operations and the optimiser's, each paying dispatch and a pass over
 * memory for a 256 × 64 batch, where the arithmetic itself takes microseconds.
 *
 * A dense gradient table is zeroed where the previous step wrote (`prev_users`/`prev_items`, its
 * ids; `prev_batch` < 0: everywhere) rather than whole, and this batch's ids are then kept there for
 * the next step (room for `batch` ids each): only this kernel writes into those tables.
 *
 * Returns 0, or -1 — before anything is written — when an id is not a row of its table. */

#include <math.h>
#include <stdint.h>
#include <string.h>

#define LANES 8 /* partial sums of a dot product: independent adds the compiler can keep in flight */

static inline float dot(const float *restrict a, const float *restrict b, const float *restrict h,
                        int64_t dim, float *restrict p)
{
    float part[LANES] = {0};
    int64_t k = 0;
    for (; k + LANES <= dim; k += LANES)
        for (int j = 0; j < LANES; j++) {
            p[k + j] = a[k + j] * b[k + j];
            part[j] += p[k + j] * h[k + j];
        }
    for (; k < dim; k++) {
        p[k] = a[k] * b[k];
        part[0] += p[k] * h[k];
    }
    float s = 0.0f;
    for (int j = 0; j < LANES; j++)
        s += part[j];
    return s;
}

/* rows × dim zeroed: all of them, or (`n_prev` ≥ 0) only the rows `prev` names */
static void zero(float *g, int64_t rows, int64_t dim, int64_t n_prev, const int64_t *prev)
{
    if (n_prev < 0) {
        memset(g, 0, sizeof(float) * (size_t)(rows * dim));
        return;
    }
    for (int64_t b = 0; b < n_prev; b++)
        memset(g + prev[b] * dim, 0, sizeof(float) * (size_t)dim);
}

static inline float softplus(float z) /* torch's: beta 1, threshold 20 */
{
    return z > 20.0f ? z : log1pf(expf(z));
}

int64_t gmf_step_f32(const int64_t *restrict users, const int64_t *restrict items, const float *restrict labels,
                     int64_t batch, int64_t dim, const float *restrict U, int64_t n_users,
                     const float *restrict I, int64_t n_items, const float *restrict h, const float *restrict c,
                     float *restrict gU, float *restrict gI, float *restrict gh, float *restrict gc,
                     float *restrict scratch, float *restrict loss, int64_t per_row,
                     int64_t *restrict prev_users, int64_t *restrict prev_items, int64_t prev_batch)
{
    for (int64_t b = 0; b < batch; b++)
        if (users[b] < 0 || users[b] >= n_users || items[b] < 0 || items[b] >= n_items)
            return -1;
    const int row_u = (per_row & 1) != 0, row_i = (per_row & 2) != 0;
    zero(gU, row_u ? batch : n_users, dim, row_u ? -1 : prev_batch, prev_users);
    zero(gI, row_i ? batch : n_items, dim, row_i ? -1 : prev_batch, prev_items);
    memcpy(prev_users, users, sizeof(int64_t) * (size_t)batch);
    memcpy(prev_items, items, sizeof(int64_t) * (size_t)batch);
    memset(gh, 0, sizeof(float) * (size_t)dim);
    float *restrict p = scratch, *restrict df = scratch + dim; /* scratch: 2·dim floats */
    double total = 0.0;
    float dc = 0.0f;
    for (int64_t b = 0; b < batch; b++) {
        const float *eu = U + users[b] * dim, *ei = I + items[b] * dim;
        float z = dot(eu, ei, h, dim, p) + c[0];
        float y = labels[b];
        total += (double)(softplus(z) - z * y);
        float dz = (1.0f / (1.0f + expf(-z)) - y) / (float)batch;
        float *restrict du = gU + (row_u ? b : users[b]) * dim, *restrict di = gI + (row_i ? b : items[b]) * dim;
        for (int64_t k = 0; k < dim; k++) {
            df[k] = dz * h[k];
            du[k] += df[k] * ei[k];
            di[k] += df[k] * eu[k];
            gh[k] += dz * p[k];
        }
        dc += dz;
    }
    gc[0] = dc;
    loss[0] = (float)(total / (double)batch);
    return 0;
}
