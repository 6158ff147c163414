/* The training step of an NCF network (GMF, MLP, NeuMF: recviz.models.ncf) on one batch, forward and
 * backward in one call: the hand-written step of recviz.models.ncf_step for float32 weights on the
 * CPU. The optimiser then steps as usual on the gradients written here.
 *
 *   e_u = U[u], e_i = I[i]: columns [GMF's `gmf` | MLP's `mlp`] (either may be 0 wide)
 *   p = e_u^G ⊙ e_i^G;  x_0 = [e_u^M; e_i^M];  x_k = drop_k(relu(x_{k−1}·W_kᵀ + b_k))   (k = 1..layers)
 *   z = [p; x_K]·h + c;  loss = mean_b softplus(z_b) − y_b·z_b;  dz = (σ(z) − y) / B
 *   dh = Σ_b dz_b·[p_b; x_K,b],  dc = Σ_b dz_b,  dp = dz·h^G,  dx_K = dz·h^M
 *   per layer, last first: da = dx_k·drop_k'·[x_k > 0],  dW_k = daᵀ·x_{k−1},  db_k = Σ_b da,  dx_{k−1} = da·W_k
 *   gU[u_b] += [dp_b ⊙ e_i^G; dx_0,b^u],  gI[i_b] += [dp_b ⊙ e_u^G; dx_0,b^i]   (zeroed first; repeats summed)
 *   — or, for a row-sparse table (bit 0 of `per_row` for U, bit 1 for I), one row per batch position
 *   (gU[b], [batch, gmf + mlp]), as torch's sparse embedding backward gives it.
 *
 * Dropout (`seeds` not NULL): element e (row-major) of layer k's output is kept when the top BITS
 * bits of mix(seeds[k−1], e) are below `threshold`, and then scaled by `scale`, else zeroed: a counter-based
 * hash, so a mask is a function of its seed alone (recviz.models.dropout holds the same function in
 * torch operations, and `dropout_noise_f32` below writes it for the autograd path).
 *
 * The matrix products go to the BLAS `sgemm` torch itself calls (its address is in the network), so
 * they cost what torch's own `mm` costs without the dispatch; everything else — the gathers, ReLU,
 * the dropout masks, the output layer, the loss, the embedding gradients — is a pass over the batch
 * here. The same float32 operations as the torch step, except the order of the sums: the output
 * layer's dot products, and the sums over the batch (h's and the biases' gradients), which add float
 * partials of BLOCK rows into doubles. Results agree to float32 rounding, not bit for bit.
 *
 * A dense gradient table is zeroed where the previous step wrote (`prev_users`/`prev_items`, its
 * ids; `prev_batch` < 0: everywhere) rather than whole, and this batch's ids are then kept there for
 * the next step (room for `capacity` ids each): only this kernel writes into those tables.
 *
 * `ncf_scratch_floats` says how large the scratch must be for a number of rows.
 *
 * Returns 0; -1, before anything is written, when an id is not a row of its table; -2 when the batch
 * is empty or larger than the scratch's `capacity`, or there is a tower and no `sgemm`. */

#include <math.h>
#include <stdint.h>
#include <string.h>

#define LANES 8 /* partial sums of a dot product: independent adds the compiler can keep in flight */

/* Fortran BLAS sgemm (column-major): C = alpha·op(A)·op(B) + beta·C. Its integers are 4 bytes (LP64)
 * or 8 (ILP64) depending on the build; `gemm` passes each in 8 bytes, zero above the value, which
 * both read as the same number on a little-endian machine. */
typedef void (*sgemm_fn)(const char *transa, const char *transb, const int64_t *m, const int64_t *n,
                         const int64_t *k, const float *alpha, const float *a, const int64_t *lda, const float *b,
                         const int64_t *ldb, const float *beta, float *c, const int64_t *ldc);

struct ncf_net { /* recviz.models.ncf_step._Net mirrors this, field for field */
    int64_t gmf, mlp, layers;      /* GMF's and MLP's columns of each table; the tower's Linear layers */
    int64_t n_users, n_items;
    int64_t per_row;               /* bit 0: U's gradient is one row per batch position; bit 1: I's */
    int64_t capacity;              /* rows the scratch has room for */
    int64_t threshold;             /* dropout: keep when the hash's top 24 bits are below it */
    double scale;                  /* dropout: a kept value's factor, 1/(1 − p) */
    const int64_t *width;          /* layers + 1: width[0] = 2·mlp, width[k] = layer k's outputs */
    const float *user, *item, *h, *c;
    const float *const *weight, *const *bias;   /* layer k's W_k [width[k], width[k−1]] and b_k */
    float *grad_h, *grad_c;
    float *const *grad_weight, *const *grad_bias;
    float *scratch;                /* ncf_scratch_floats(net, capacity) floats (see `layout`) */
    int64_t *prev_users, *prev_items;
    sgemm_fn sgemm;                /* NULL is allowed only without a tower */
};

static inline uint64_t mix(uint64_t seed, uint64_t e) /* splitmix64's output of counter e + 1 */
{
    uint64_t z = seed + (e + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

#define BITS 24 /* recviz.models.dropout.BITS: the hash's top bits compared with the threshold */

/* whether dropout keeps value e of a layer drawn with `seed` */
static inline int keep(uint64_t seed, uint64_t e, int64_t threshold)
{
    return (int64_t)(mix(seed, e) >> (64 - BITS)) < threshold;
}

/* dropout's factors for elements 0..n−1 of a seed: `scale` where kept, 0 where dropped */
int64_t dropout_noise_f32(int64_t seed, int64_t n, int64_t threshold, double scale, float *restrict out)
{
    const float s = (float)scale;
    for (int64_t e = 0; e < n; e++)
        out[e] = keep((uint64_t)seed, (uint64_t)e, threshold) ? s : 0.0f;
    return 0;
}

static inline float dot(const float *restrict a, const float *restrict b, int64_t n)
{
    float part[LANES] = {0};
    int64_t k = 0;
    for (; k + LANES <= n; k += LANES)
        for (int j = 0; j < LANES; j++)
            part[j] += a[k + j] * b[k + j];
    for (; k < n; k++)
        part[0] += a[k] * b[k];
    float s = 0.0f;
    for (int j = 0; j < LANES; j++)
        s += part[j];
    return s;
}

/* Σ_k (a ⊙ b)_k·h_k, with p = a ⊙ b written out */
static inline float product_dot(const float *restrict a, const float *restrict b, const float *restrict h,
                                int64_t n, float *restrict p)
{
    for (int64_t k = 0; k < n; k++)
        p[k] = a[k] * b[k];
    return dot(p, h, n);
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

/* column-major C[m, n] = op(A)·op(B) (beta 0; lda, ldb, ldc: the leading dimensions) */
static void gemm(sgemm_fn sgemm, const char *ta, const char *tb, int64_t m, int64_t n, int64_t k, const float *a,
                 int64_t lda, const float *b, int64_t ldb, float *c, int64_t ldc)
{
    const float one = 1.0f, nil = 0.0f;
    sgemm(ta, tb, &m, &n, &k, &one, a, &lda, b, &ldb, &nil, c, &ldc);
}

/* 0 when `sgemm` multiplies as BLAS's sgemm does (a small product with a known answer, each
 * transpose case the step uses), else -1: recviz.native checks the address it found before use */
int64_t blas_check_f32(sgemm_fn sgemm)
{
    const float a[6] = {1, 2, 3, 4, 5, 6};     /* column-major 2 × 3: rows (1 3 5), (2 4 6) */
    const float b[6] = {1, 0, -1, 2, 1, 0};    /* column-major 3 × 2: rows (1 2), (0 1), (−1 0) */
    const float nn[4] = {-4, -4, 5, 8};        /* A·B, column-major 2 × 2 */
    const float tn[4] = {-2, -2, 4, 13};       /* Aᵀ·B with A read as 3 × 2 (rows (1 4), (2 5), (3 6)) */
    float c[4] = {NAN, NAN, NAN, NAN};  /* what a function that writes nothing leaves: never equal */
    gemm(sgemm, "N", "N", 2, 2, 3, a, 2, b, 3, c, 2);
    for (int j = 0; j < 4; j++)
        if (c[j] != nn[j])
            return -1;
    c[0] = c[1] = c[2] = c[3] = NAN;
    gemm(sgemm, "T", "N", 2, 2, 3, a, 3, b, 3, c, 2);
    for (int j = 0; j < 4; j++)
        if (c[j] != tn[j])
            return -1;
    c[0] = c[1] = c[2] = c[3] = NAN;
    gemm(sgemm, "N", "T", 2, 2, 3, a, 2, a, 2, c, 2);  /* A·Aᵀ: (35 44; 44 56) */
    return c[0] == 35 && c[1] == 44 && c[2] == 44 && c[3] == 56 ? 0 : -1;
}

/* The scratch's parts, in order: x_0 … x_K (each rows × width[k]); two gradient buffers (rows × the
 * widest); p and dp (gmf each); then, 8-byte aligned, the double sums over the batch and their
 * float partials, room enough for h's (gmf + width[K]) or any layer's bias (≤ the widest) each.
 * Returns the floats it spans; the pointers it is given (not NULL) are set to the parts. */
static int64_t layout(const struct ncf_net *net, int64_t rows, float **x, float **d, float **d_other, float **p,
                      float **dp, double **sums, float **parts)
{
    const int64_t *width = net->width, last = net->layers ? width[net->layers] : 0;
    int64_t widest = 0, at = 0;
    for (int64_t k = 0; k <= net->layers; k++) {
        if (x)
            x[k] = net->scratch + at;
        at += rows * width[k];
        widest = width[k] > widest ? width[k] : widest;
    }
    if (d) {
        *d = net->scratch + at;
        *d_other = *d + rows * widest;
        *p = *d_other + rows * widest;
        *dp = *p + net->gmf;
    }
    at += 2 * rows * widest + 2 * net->gmf;
    at += at % 2;  /* doubles start on an 8-byte boundary (the scratch itself is 64-byte aligned) */
    const int64_t n_sums = widest > net->gmf + last ? widest : net->gmf + last;
    if (sums) {
        *sums = (double *)(net->scratch + at);
        *parts = net->scratch + at + 2 * n_sums;
    }
    return at + 3 * n_sums;  /* n_sums doubles, then n_sums floats */
}

#define BLOCK 32 /* rows a float partial sum adds before it goes into its double sum */

/* sums[j] += parts[j] (then parts[j] = 0) for j < n: a float partial sum of BLOCK rows into the
 * double one — vectorised float adds row by row, the conversion once a block */
static inline void flush(double *restrict sums, float *restrict parts, int64_t n)
{
    for (int64_t j = 0; j < n; j++) {
        sums[j] += (double)parts[j];
        parts[j] = 0.0f;
    }
}

/* how many floats the scratch needs for `rows` rows (recviz.models.ncf_step allocates it) */
int64_t ncf_scratch_floats(const struct ncf_net *net, int64_t rows)
{
    return layout(net, rows, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
}

int64_t ncf_step_f32(const struct ncf_net *net, const int64_t *restrict users, const int64_t *restrict items,
                     const float *restrict labels, int64_t batch, float *restrict gU, float *restrict gI,
                     int64_t prev_batch, const int64_t *restrict seeds, float *restrict loss)
{
    const int64_t g = net->gmf, m = net->mlp, dim = g + m, layers = net->layers;
    if (batch < 1 || batch > net->capacity || (layers && !net->sgemm))
        return -2;
    for (int64_t b = 0; b < batch; b++)
        if (users[b] < 0 || users[b] >= net->n_users || items[b] < 0 || items[b] >= net->n_items)
            return -1;
    const float *U = net->user, *I = net->item, *h = net->h;
    const int64_t *width = net->width, last = layers ? width[layers] : 0;
    const float scale = (float)net->scale;

    float *x[layers + 1], *d, *d_other, *p, *dp;
    double *sums;
    float *parts;
    layout(net, net->capacity, x, &d, &d_other, &p, &dp, &sums, &parts);

    /* forward through the tower */
    if (layers) {
        for (int64_t b = 0; b < batch; b++) {
            memcpy(x[0] + b * 2 * m, U + users[b] * dim + g, sizeof(float) * (size_t)m);
            memcpy(x[0] + b * 2 * m + m, I + items[b] * dim + g, sizeof(float) * (size_t)m);
        }
    }
    for (int64_t k = 1; k <= layers; k++) {
        const int64_t w = width[k];
        const float *restrict bias = net->bias[k - 1];
        float *restrict out = x[k];
        /* out[batch, w] = x_{k−1}·W_kᵀ, row-major: column-major outᵀ = W_k(ᵀ read as [w_in, w])ᵀ·x_{k−1}ᵀ */
        gemm(net->sgemm, "T", "N", w, batch, width[k - 1], net->weight[k - 1], width[k - 1], x[k - 1], width[k - 1],
             out, w);
        for (int64_t b = 0; b < batch; b++) {
            float *restrict row = out + b * w;
            for (int64_t j = 0; j < w; j++) {
                float v = row[j] + bias[j];
                row[j] = v > 0.0f ? v : 0.0f;
            }
        }
        if (seeds) {  /* one flat pass over the layer's batch × w values: element e = b·w + j */
            const uint64_t seed = (uint64_t)seeds[k - 1];
            const int64_t threshold = net->threshold;
            for (int64_t e = 0; e < batch * w; e++)
                out[e] = keep(seed, (uint64_t)e, threshold) ? out[e] * scale : 0.0f;
        }
    }

    /* the output layer, the loss, GMF's gradients and dx_K, row by row */
    const int row_u = (net->per_row & 1) != 0, row_i = (net->per_row & 2) != 0;
    zero(gU, row_u ? batch : net->n_users, dim, row_u ? -1 : prev_batch, net->prev_users);
    zero(gI, row_i ? batch : net->n_items, dim, row_i ? -1 : prev_batch, net->prev_items);
    memcpy(net->prev_users, users, sizeof(int64_t) * (size_t)batch);
    memcpy(net->prev_items, items, sizeof(int64_t) * (size_t)batch);
    /* the sums over the batch (h's and the biases' gradients, the loss) add in double: torch's
     * reductions sum pairwise, and a float sum of 1024 terms one by one is ~10× less accurate */
    double *restrict sum_h = sums, total = 0.0, dc = 0.0;
    float *restrict part_h = parts, part_c = 0.0f;
    memset(sum_h, 0, sizeof(double) * (size_t)(g + last));
    memset(part_h, 0, sizeof(float) * (size_t)(g + last));
    for (int64_t b = 0; b < batch; b++) {
        const float *eu = U + users[b] * dim, *ei = I + items[b] * dim, *xk = x[layers] + b * last;
        float z = g ? product_dot(eu, ei, h, g, p) : 0.0f;
        if (layers)
            z += dot(xk, h + g, last);
        z += net->c[0];
        const float y = labels[b];
        total += (double)(softplus(z) - z * y);
        const float dz = (1.0f / (1.0f + expf(-z)) - y) / (float)batch;
        float *restrict du = gU + (row_u ? b : users[b]) * dim, *restrict di = gI + (row_i ? b : items[b]) * dim;
        for (int64_t k = 0; k < g; k++) {
            dp[k] = dz * h[k];
            du[k] += dp[k] * ei[k];
            di[k] += dp[k] * eu[k];
            part_h[k] += dz * p[k];
        }
        float *restrict dxk = d + b * last;
        for (int64_t j = 0; j < last; j++) {
            part_h[g + j] += dz * xk[j];
            dxk[j] = dz * h[g + j];
        }
        part_c += dz;
        if ((b + 1) % BLOCK == 0 || b + 1 == batch) {
            flush(sum_h, part_h, g + last);
            dc += (double)part_c;
            part_c = 0.0f;
        }
    }
    for (int64_t k = 0; k < g + last; k++)
        net->grad_h[k] = (float)sum_h[k];
    net->grad_c[0] = (float)dc;
    loss[0] = (float)(total / (double)batch);

    /* backward through the tower, last layer first; d holds ∂loss/∂x_k */
    for (int64_t k = layers; k >= 1; k--) {
        const int64_t w = width[k], w_in = width[k - 1];
        const float factor = seeds ? scale : 1.0f;
        double *restrict sum_b = sums;
        float *restrict part_b = parts;
        memset(sum_b, 0, sizeof(double) * (size_t)w);
        memset(part_b, 0, sizeof(float) * (size_t)w);
        for (int64_t b = 0; b < batch; b++) {  /* da, and its sum over the batch: b_k's gradient */
            const float *restrict xk = x[k] + b * w;
            float *restrict da = d + b * w;
            for (int64_t j = 0; j < w; j++) {
                da[j] = xk[j] > 0.0f ? da[j] * factor : 0.0f;  /* x_k > 0 exactly where kept and relu > 0 */
                part_b[j] += da[j];
            }
            if ((b + 1) % BLOCK == 0 || b + 1 == batch)
                flush(sum_b, part_b, w);
        }
        for (int64_t j = 0; j < w; j++)
            net->grad_bias[k - 1][j] = (float)sum_b[j];
        /* dW_k = daᵀ·x_{k−1} ([w, w_in], row-major) and dx_{k−1} = da·W_k ([batch, w_in]) */
        gemm(net->sgemm, "N", "T", w_in, w, batch, x[k - 1], w_in, d, w, net->grad_weight[k - 1], w_in);
        gemm(net->sgemm, "N", "N", w_in, batch, w, net->weight[k - 1], w_in, d, w, d_other, w_in);
        float *t = d;
        d = d_other;
        d_other = t;
    }
    for (int64_t b = 0; layers && b < batch; b++) {  /* dx_0 into the tables' MLP columns */
        float *restrict du = gU + (row_u ? b : users[b]) * dim + g, *restrict di = gI + (row_i ? b : items[b]) * dim + g;
        const float *restrict dx = d + b * 2 * m;
        for (int64_t j = 0; j < m; j++) {
            du[j] += dx[j];
            di[j] += dx[m + j];
        }
    }
    return 0;
}
