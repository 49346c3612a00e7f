/* Decode attention over a slot KV cache, for cpu_engine/native.py.
 *
 * Why not torch's SDPA: with a handful of query rows per kv head, its CPU flash kernel reads the
 * cache at about a quarter of this machine's memory bandwidth. Here each (row, kv head) pair streams
 * its keys once for all the query heads that share them (grouped-query attention: 3 on SmolLM2),
 * four key columns at a time, and its values once per half head (the second half finds them in L2).
 *
 * Each query row's result depends only on its own query, its row's cache and its column limit: the
 * order of every sum is fixed by the head size and the column count (a score is one FMA chain over
 * the head's 8-float chunks, then a fixed tree over the lanes; a value column is one FMA chain over
 * the columns). So a row gets the same bits whether it is alone, in a batch, or verifying draft
 * tokens next to other query rows.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "simd.h"

#if VEC
#define AHEAD 16 /* columns to prefetch ahead */
#define GROUP 3 /* query rows sharing one pass over the keys: a kv head's query heads at one position */

/* The four lane sums of a0..a3, each ((x0 + x1) + (x2 + x3)) + ((x4 + x5) + (x6 + x7)). */
static inline __m128 sum4(__m256 a0, __m256 a1, __m256 a2, __m256 a3) {
    __m256 u = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
    return _mm_add_ps(_mm256_castps256_ps128(u), _mm256_extractf128_ps(u, 1));
}

/* s[r][c] = scale * q[r] . K[c] for g query rows and columns [0, n) rounded up to 4 (the extra
 * columns repeat column n - 1: their scores are never read). */
static inline __attribute__((always_inline)) void scores(const float *q, const float *K, int64_t n, int64_t d,
                                                        float scale, float *s, int64_t ld, const int g) {
    const __m128 sc = _mm_set1_ps(scale);
    for (int64_t c = 0; c < n; c += 4) {
        const float *k[4];
        for (int i = 0; i < 4; i++) k[i] = K + (c + i < n ? c + i : n - 1) * d;
        for (int64_t b = 0; b < 4 * d; b += 16) _mm_prefetch((const char *)(K + (c + AHEAD) * d + b), _MM_HINT_T0);
        __m256 acc[GROUP][4];
        for (int r = 0; r < g; r++)
            for (int i = 0; i < 4; i++) acc[r][i] = _mm256_setzero_ps();
        for (int64_t j = 0; j < d; j += 8) {
            __m256 kv[4];
            for (int i = 0; i < 4; i++) kv[i] = _mm256_loadu_ps(k[i] + j);
            for (int r = 0; r < g; r++) {
                __m256 qv = _mm256_loadu_ps(q + r * d + j);
                for (int i = 0; i < 4; i++) acc[r][i] = _mm256_fmadd_ps(qv, kv[i], acc[r][i]);
            }
        }
        for (int r = 0; r < g; r++)
            _mm_storeu_ps(s + r * ld + c, _mm_mul_ps(sum4(acc[r][0], acc[r][1], acc[r][2], acc[r][3]), sc));
    }
}

/* e^x for x <= 0: 2^k * e^(f ln 2) with |f| <= 1/2 and a degree-6 Taylor polynomial (relative
 * error about 1e-7). */
static inline __m256 exp_neg(__m256 x) {
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
    __m256 t = _mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f));
    __m256 k = _mm256_round_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 y = _mm256_mul_ps(_mm256_sub_ps(t, k), _mm256_set1_ps(0.693147180559945309f));
    __m256 p = _mm256_set1_ps(1.0f / 720);
    const float coef[] = {1.0f / 120, 1.0f / 24, 1.0f / 6, 0.5f, 1.0f, 1.0f};
    for (int i = 0; i < 6; i++) p = _mm256_fmadd_ps(p, y, _mm256_set1_ps(coef[i]));
    __m256i two_k = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(two_k));
}

/* s[0, n) <- exp(s - max s), zero from n up to the next multiple of 8; returns 1 / their sum. */
static float softmax_weights(float *s, int64_t n) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256 top = _mm256_set1_ps(-INFINITY);
    for (int64_t c = 0; c < n; c += 8) {
        __m256 live = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n - c)), lane));
        top = _mm256_max_ps(top, _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), _mm256_loadu_ps(s + c), live));
    }
    __m128 t4 = _mm_max_ps(_mm256_castps256_ps128(top), _mm256_extractf128_ps(top, 1));
    t4 = _mm_max_ps(t4, _mm_movehl_ps(t4, t4));
    const __m256 shift = _mm256_set1_ps(_mm_cvtss_f32(_mm_max_ss(t4, _mm_movehdup_ps(t4))));
    __m256 total = _mm256_setzero_ps();
    for (int64_t c = 0; c < n; c += 8) {
        __m256 live = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32((int)(n - c)), lane));
        __m256 e = _mm256_and_ps(exp_neg(_mm256_sub_ps(_mm256_loadu_ps(s + c), shift)), live);
        _mm256_storeu_ps(s + c, e);
        total = _mm256_add_ps(total, e);
    }
    return 1.0f / lanes_sum(total);
}

/* out[r] = inv[r] * sum over c < n of w[r][c] V[c], for g rows, 32 floats of the head at a time. */
static inline __attribute__((always_inline)) void mix(const float *w, int64_t ld, const float *inv, const float *V,
                                                     int64_t n, int64_t d, float *out, const int g) {
    for (int64_t j0 = 0; j0 < d; j0 += 32) {
        const int width = d - j0 >= 32 ? 4 : (int)(d - j0) / 8;
        __m256 acc[GROUP][4];
        for (int r = 0; r < g; r++)
            for (int i = 0; i < 4; i++) acc[r][i] = _mm256_setzero_ps();
        for (int64_t c = 0; c < n; c++) {
            const float *v = V + c * d + j0;
            if (j0 == 0)
                for (int64_t b = 0; b < d; b += 16) _mm_prefetch((const char *)(V + (c + AHEAD) * d + b), _MM_HINT_T0);
            for (int r = 0; r < g; r++) {
                __m256 p = _mm256_broadcast_ss(w + r * ld + c);
                for (int i = 0; i < width; i++) acc[r][i] = _mm256_fmadd_ps(p, _mm256_loadu_ps(v + 8 * i), acc[r][i]);
            }
        }
        for (int r = 0; r < g; r++)
            for (int i = 0; i < width; i++)
                _mm256_storeu_ps(out + r * d + j0 + 8 * i, _mm256_mul_ps(acc[r][i], _mm256_set1_ps(inv[r])));
    }
}

/* g query rows (consecutive, same column limit n) of one (row, kv head) pair. */
static inline __attribute__((always_inline)) void group(const float *q, const float *K, const float *V, int64_t n,
                                                       int64_t d, float scale, float *s, int64_t ld, float *out,
                                                       const int g) {
    float inv[GROUP];
    scores(q, K, n, d, scale, s, ld, g);
    for (int r = 0; r < g; r++) inv[r] = softmax_weights(s + r * ld, n);
    mix(s, ld, inv, V, n, d, out, g);
}

static int vector_path(int64_t d) { return d % 8 == 0; }

static void pair_vector(const float *q, const float *K, const float *V, const int64_t *lim, int64_t nq, int64_t d,
                        float scale, float *s, int64_t ld, float *out) {
    for (int64_t r = 0; r < nq;) {
        int64_t n = lim[r];
        int g = 1;
        while (g < GROUP && r + g < nq && lim[r + g] == n) g++;
        if (n < 1) { /* padding: a row verifying fewer draft tokens than others */
            memset(out + r * d, 0, sizeof(float) * d * g);
        } else if (g == 3) {
            group(q + r * d, K, V, n, d, scale, s, ld, out + r * d, 3);
        } else if (g == 2) {
            group(q + r * d, K, V, n, d, scale, s, ld, out + r * d, 2);
        } else {
            group(q + r * d, K, V, n, d, scale, s, ld, out + r * d, 1);
        }
        r += g;
    }
}
#else
static int vector_path(int64_t d) { (void)d; return 0; }
static void pair_vector(const float *q, const float *K, const float *V, const int64_t *lim, int64_t nq, int64_t d,
                        float scale, float *s, int64_t ld, float *out) {
    (void)q; (void)K; (void)V; (void)lim; (void)nq; (void)d; (void)scale; (void)s; (void)ld; (void)out;
}
#endif

/* The portable loops, for head sizes the vector path does not take. */
static void pair_portable(const float *q, const float *K, const float *V, const int64_t *lim, int64_t nq, int64_t d,
                          float scale, float *s, float *out) {
    for (int64_t r = 0; r < nq; r++) {
        const int64_t n = lim[r];
        float *o = out + r * d;
        memset(o, 0, sizeof(float) * d);
        if (n < 1) continue;
        float top = -INFINITY, total = 0.0f;
        for (int64_t c = 0; c < n; c++) {
            float dot = 0.0f;
            for (int64_t i = 0; i < d; i++) dot += q[r * d + i] * K[c * d + i];
            s[c] = dot * scale;
            top = s[c] > top ? s[c] : top;
        }
        for (int64_t c = 0; c < n; c++) total += s[c] = expf(s[c] - top);
        for (int64_t c = 0; c < n; c++)
            for (int64_t i = 0; i < d; i++) o[i] += s[c] / total * V[c * d + i];
    }
}

/* q, out: [rows * kv_heads][nq][d]; kc, vc: [slots][kv_heads][capacity][d];
 * limit: [rows][nq], how many cache columns each query row sees (its position + 1; 0 skips the row). */
void attend(const float *q, const float *kc, const float *vc, const int64_t *limit, float *out,
            int64_t rows, int64_t kv_heads, int64_t nq, int64_t d, int64_t capacity, float scale) {
    int64_t widest = 1;
    for (int64_t i = 0; i < rows * nq; i++) widest = limit[i] > widest ? limit[i] : widest;
    const int64_t ld = (widest + 15) / 8 * 8; /* room for the rounding up to 4 and to 8 columns */
    const int vec = vector_path(d);
#pragma omp parallel
    {
        float *s = malloc(sizeof(float) * 3 * ld);
#pragma omp for schedule(dynamic, 2)
        for (int64_t pair = 0; pair < rows * kv_heads; pair++) {
            const int64_t *lim = limit + (pair / kv_heads) * nq;
            const float *K = kc + pair * capacity * d, *V = vc + pair * capacity * d;
            if (vec)
                pair_vector(q + pair * nq * d, K, V, lim, nq, d, scale, s, ld, out + pair * nq * d);
            else
                pair_portable(q + pair * nq * d, K, V, lim, nq, d, scale, s, out + pair * nq * d);
        }
        free(s);
    }
}
