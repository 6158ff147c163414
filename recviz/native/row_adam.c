/* Lazy Adam over one row-sparse gradient, in one pass: recviz.training.optim.RowAdam's step for a
 * float32 table on the CPU (see that module for the semantics, and recviz/training/native.py for
 * why this is compiled C and how it is built).
 *
 * The batch's gradient arrives as torch builds it for a sparse embedding table: one row per batch
 * position (`ids[k]`, `grads[k]`), a table row repeated as often as the batch read it. The repeats
 * are summed first, in batch order, into `acc` (a row's first position decides its slot; `slot` is
 * a per-table-row scratch, -1 where unused, left all -1 again on return). Then every distinct row
 * takes Adam's step with its own count t, exactly the operations of the torch version, in float32,
 * with the bias corrections looked up by count in RowAdam's tables (computed in float64 and rounded
 * once, as torch's Adam computes them: `step_sizes[t]` = lr/(1−β₁ᵗ), `corrections2[t]` = √(1−β₂ᵗ);
 * the caller makes the tables longer than any count can be after this step):
 *
 *   g = acc + wd·p;  m = β₁·m + (1−β₁)·g;  v = β₂·v + (1−β₂)·g·g;  t = t + 1
 *   p = p − (m / (√v / √(1−β₂ᵗ) + eps)) · lr/(1−β₁ᵗ)
 *
 * A row's m and v lie side by side (`mv`: [rows, 2, dim], m first), as RowAdam keeps them.
 * Returns the number of distinct rows, or -1 — before anything is written — when an id is not a
 * row of the table (`table_rows`). */

#include <math.h>
#include <stdint.h>
#include <string.h>

/* A batch's rows lie anywhere in tables of up to gigabytes: every row is a cache (and TLB) miss.
 * Asking for the rows a few steps ahead overlaps those misses instead of paying them one by one. */
#define AHEAD_IDS 16
#define AHEAD_ROWS 4

static inline void prefetch_row(const float *p, const float *mv, const int32_t *t, int64_t r, int64_t dim)
{
    const char *w = (const char *)(p + r * dim), *m = (const char *)(mv + r * 2 * dim);
    for (int64_t b = 0; b < dim * (int64_t)sizeof(float); b += 64) {
        __builtin_prefetch(w + b, 1);
        __builtin_prefetch(m + b, 1);
        __builtin_prefetch(m + dim * sizeof(float) + b, 1);
    }
    __builtin_prefetch(t + r, 1);
}

int64_t row_adam_f32(float *p, float *mv, int32_t *t, int32_t *slot, int64_t table_rows, int64_t dim,
                     const int64_t *ids, const float *grads, int64_t n, int64_t *uniq, float *acc,
                     const float *step_sizes, const float *corrections2,
                     double beta1, double beta2, double eps, double weight_decay)
{
    for (int64_t k = 0; k < n; k++)
        if (ids[k] < 0 || ids[k] >= table_rows)
            return -1;
    int64_t rows = 0;
    for (int64_t k = 0; k < n; k++) {
        if (k + AHEAD_IDS < n)
            __builtin_prefetch(slot + ids[k + AHEAD_IDS], 1);
        int64_t r = ids[k];
        const float *g = grads + k * dim;
        if (slot[r] < 0) {
            slot[r] = (int32_t)rows;
            uniq[rows] = r;
            memcpy(acc + rows * dim, g, (size_t)dim * sizeof(float));
            rows++;
        } else {
            float *a = acc + (int64_t)slot[r] * dim;
            for (int64_t j = 0; j < dim; j++)
                a[j] += g[j];
        }
    }
    const float b1 = (float)beta1, b2 = (float)beta2, one_b1 = (float)(1.0 - beta1);
    const float one_b2 = (float)(1.0 - beta2), e = (float)eps, wd = (float)weight_decay;
    for (int64_t s = 0; s < rows; s++) {
        if (s + AHEAD_ROWS < rows)
            prefetch_row(p, mv, t, uniq[s + AHEAD_ROWS], dim);
        int64_t r = uniq[s];
        slot[r] = -1;
        int32_t count = t[r] + 1;
        t[r] = count;
        const float step_size = step_sizes[count], correction2 = corrections2[count];
        float *w = p + r * dim, *m = mv + r * 2 * dim, *v = m + dim;
        const float *a = acc + s * dim;
        for (int64_t j = 0; j < dim; j++) {
            float g = a[j];
            if (weight_decay != 0.0)
                g = g + wd * w[j];
            float mj = m[j] * b1 + one_b1 * g;
            float vj = v[j] * b2 + one_b2 * g * g;
            m[j] = mj;
            v[j] = vj;
            float denom = sqrtf(vj) / correction2 + e;
            w[j] = w[j] - (mj / denom) * step_size;
        }
    }
    return rows;
}
