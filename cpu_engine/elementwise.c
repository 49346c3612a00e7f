/* The decoder's elementwise steps, for cpu_engine/native.py: the residual add with the RMSNorm
 * after it, the SiLU gate, and RoPE with the KV cache store.
 *
 * Why: in torch each is several ops, each with its own dispatch, allocation and pass over memory;
 * with 30 layers that is several hundred small ops per decode step, 12-17 % of a step on this 2-core CPU.
 *
 * RoPE and the residual add round exactly as torch does (same multiplies and adds, never fused:
 * native.py builds with -ffp-contract=off). RMSNorm's sum of squares and SiLU's exp round their own
 * way, but each row's result depends only on that row, never on its batch.
 */
#include <math.h>
#include <stdint.h>

#include "simd.h"

#define BIG (1 << 16) /* elements below which one thread does the whole call */

int simd_level(void) { return SIMD_LEVEL; }

/* Sum of squares: eight lanes in order over the row, then a fixed tree (scalar for odd sizes). */
static float sum_squares(const float *x, int64_t n) {
#if VEC
    if (n % 8 == 0) {
        __m256 acc = _mm256_setzero_ps();
        for (int64_t j = 0; j < n; j += 8) {
            __m256 v = _mm256_loadu_ps(x + j);
            acc = _mm256_add_ps(acc, _mm256_mul_ps(v, v));
        }
        return lanes_sum(acc);
    }
#endif
    float s = 0.0f;
    for (int64_t j = 0; j < n; j++) s += x[j] * x[j];
    return s;
}

/* x += delta (when given), then h = w * (x / sqrt(mean(x^2) + eps)), row by row, as HF's LlamaRMSNorm
 * orders its products. */
void residual_norm(float *x, const float *delta, const float *w, float *h, int64_t rows, int64_t dim, float eps) {
#pragma omp parallel for if (rows * dim > BIG) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        float *xr = x + r * dim, *hr = h + r * dim;
        if (delta)
            for (int64_t j = 0; j < dim; j++) xr[j] += delta[r * dim + j];
        const float inv = 1.0f / sqrtf(sum_squares(xr, dim) / (float)dim + eps);
        for (int64_t j = 0; j < dim; j++) hr[j] = w[j] * (xr[j] * inv);
    }
}

/* out[r] = silu(gate[r]) * up[r], with gu[r] = [gate | up] (the fused gate/up matmul's output). */
void silu_mul(const float *gu, float *out, int64_t rows, int64_t inter) {
#pragma omp parallel for if (rows * inter > BIG) schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const float *g = gu + r * 2 * inter, *u = g + inter;
        float *o = out + r * inter;
        int64_t j = 0;
#if VEC
        const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
        for (; j + 8 <= inter; j += 8) {
            __m256 x = _mm256_loadu_ps(g + j);
            __m256 s = _mm256_div_ps(x, _mm256_add_ps(one, exp8(_mm256_sub_ps(zero, x))));
            _mm256_storeu_ps(o + j, _mm256_mul_ps(s, _mm256_loadu_ps(u + j)));
        }
#endif
        for (; j < inter; j++) o[j] = g[j] / (1.0f + expf(-g[j])) * u[j];
    }
}

/* One head rotated as torch's x * cos + rotate_half(x) * sin, where rotate_half(x) = [-x2, x1]. */
static void rotate(const float *x, const float *c, const float *s, float *out, int64_t d) {
    const int64_t h = d / 2;
    int64_t i = 0;
#if VEC
    for (; h % 8 == 0 && i < h; i += 8) {
        __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + h + i);
        _mm256_storeu_ps(out + i, _mm256_sub_ps(_mm256_mul_ps(a, _mm256_loadu_ps(c + i)),
                                                _mm256_mul_ps(b, _mm256_loadu_ps(s + i))));
        _mm256_storeu_ps(out + h + i, _mm256_add_ps(_mm256_mul_ps(b, _mm256_loadu_ps(c + h + i)),
                                                    _mm256_mul_ps(a, _mm256_loadu_ps(s + h + i))));
    }
#endif
    for (; i < h; i++) {
        const float a = x[i], b = x[h + i];
        out[i] = a * c[i] - b * s[i];
        out[h + i] = b * c[h + i] + a * s[h + i];
    }
}

/* Token t of qkv [tokens][(heads + 2 kv_heads) d] at position pos[t] of slot slot[t]: its query heads,
 * rotated, into q [tokens][heads][d]; its key heads, rotated, and value heads into the caches
 * kc, vc [slots][kv_heads][capacity][d]. cos, sin: [positions][d] tables. */
void rope_store(const float *qkv, const float *cos, const float *sin, const int64_t *slot, const int64_t *pos,
                float *q, float *kc, float *vc, int64_t tokens, int64_t heads, int64_t kv_heads, int64_t d,
                int64_t capacity) {
    const int64_t width = (heads + 2 * kv_heads) * d;
#pragma omp parallel for if (tokens * width > BIG) schedule(static)
    for (int64_t t = 0; t < tokens; t++) {
        const float *row = qkv + t * width, *c = cos + pos[t] * d, *s = sin + pos[t] * d;
        for (int64_t h = 0; h < heads; h++) rotate(row + h * d, c, s, q + (t * heads + h) * d, d);
        for (int64_t h = 0; h < kv_heads; h++) {
            const int64_t at = ((slot[t] * kv_heads + h) * capacity + pos[t]) * d;
            rotate(row + (heads + h) * d, c, s, kc + at, d);
            const float *v = row + (heads + kv_heads + h) * d;
            for (int64_t i = 0; i < d; i++) vc[at + i] = v[i];
        }
    }
}
