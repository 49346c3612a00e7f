/* Decode attention over a slot KV cache, for harness/backends/native.py.
 *
 * Why not torch's SDPA: with a handful of query rows per kv head, its CPU flash kernel reads the
 * cache at about a quarter of this machine's memory bandwidth, and attention became a third of a
 * decode step. Here each (row, kv head) pair streams its keys and values from memory once; the
 * pair's other query rows find them in cache.
 *
 * Each query row's result depends only on its own query, its row's cache and its column limit: the
 * order of every sum is fixed by the head size and the column count. So a row gets the same bits
 * whether it is alone, in a batch, or verifying draft tokens next to other query rows.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define VEC 1
#else
#define VEC 0
#endif

/* scores[c] = scale * q . K[c] for c < n */
static void score_row(const float *q, const float *K, int64_t n, int64_t d, float scale, float *scores) {
#if VEC
    if (d % 16 == 0 && d <= 128) {
        __m256 qv[16];
        for (int64_t j = 0; j < d / 8; j++) qv[j] = _mm256_loadu_ps(q + 8 * j);
        for (int64_t c = 0; c < n; c++) {
            const float *k = K + c * d;
            __m256 a = _mm256_mul_ps(qv[0], _mm256_loadu_ps(k));
            __m256 b = _mm256_mul_ps(qv[1], _mm256_loadu_ps(k + 8));
            for (int64_t j = 2; j < d / 8; j += 2) {
                a = _mm256_fmadd_ps(qv[j], _mm256_loadu_ps(k + 8 * j), a);
                b = _mm256_fmadd_ps(qv[j + 1], _mm256_loadu_ps(k + 8 * j + 8), b);
            }
            __m256 s8 = _mm256_add_ps(a, b);
            __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
            __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
            __m128 s1 = _mm_add_ss(s2, _mm_movehdup_ps(s2));
            scores[c] = _mm_cvtss_f32(s1) * scale;
        }
        return;
    }
#endif
    for (int64_t c = 0; c < n; c++) {
        float s = 0.0f;
        for (int64_t i = 0; i < d; i++) s += q[i] * K[c * d + i];
        scores[c] = s * scale;
    }
}

/* out = sum over c < n of p[c] * V[c] */
static void mix_row(const float *p, const float *V, int64_t n, int64_t d, float *out) {
#if VEC
    if (d % 8 == 0 && d <= 128) {
        __m256 acc[16];
        for (int64_t j = 0; j < d / 8; j++) acc[j] = _mm256_setzero_ps();
        for (int64_t c = 0; c < n; c++) {
            __m256 w = _mm256_broadcast_ss(p + c);
            for (int64_t j = 0; j < d / 8; j++) acc[j] = _mm256_fmadd_ps(w, _mm256_loadu_ps(V + c * d + 8 * j), acc[j]);
        }
        for (int64_t j = 0; j < d / 8; j++) _mm256_storeu_ps(out + 8 * j, acc[j]);
        return;
    }
#endif
    memset(out, 0, sizeof(float) * d);
    for (int64_t c = 0; c < n; c++)
        for (int64_t i = 0; i < d; i++) out[i] += p[c] * V[c * d + i];
}

/* exp(x) for x <= 0 (scores minus their maximum): 2^k * e^(f ln 2) with |f| <= 1/2 and a degree-6
 * Taylor polynomial (relative error about 1e-7), written without calls so the loop vectorises. */
static void exp_shifted(float *x, int64_t n, float shift) {
    for (int64_t i = 0; i < n; i++) {
        float v = x[i] - shift;
        v = v < -87.0f ? -87.0f : v;
        float t = v * 1.44269504088896341f;
        float k = rintf(t);
        float y = (t - k) * 0.693147180559945309f;
        float p = 1.0f + y * (1.0f + y * (0.5f + y * (1.0f / 6 + y * (1.0f / 24 + y * (1.0f / 120 + y * (1.0f / 720))))));
        union { int32_t i; float f; } two_k = {.i = ((int32_t)k + 127) << 23};
        x[i] = p * two_k.f;
    }
}

static void softmax(float *s, int64_t n) {
    float top = s[0], total = 0.0f;
    for (int64_t c = 1; c < n; c++) top = s[c] > top ? s[c] : top;
    exp_shifted(s, n, top);
    for (int64_t c = 0; c < n; c++) total += s[c];
    float inv = 1.0f / total;
    for (int64_t c = 0; c < n; c++) s[c] *= inv;
}

/* q, out: [rows * kv_heads][nq][d]; kc, vc: [slots][kv_heads][capacity][d];
 * limit: [rows][nq], how many cache columns each query row sees (its position + 1; 0 skips the row). */
void attend(const float *q, const float *kc, const float *vc, const int64_t *limit, float *out,
            int64_t rows, int64_t kv_heads, int64_t nq, int64_t d, int64_t capacity, float scale) {
    int64_t widest = 1;
    for (int64_t i = 0; i < rows * nq; i++) widest = limit[i] > widest ? limit[i] : widest;
#pragma omp parallel
    {
        float *scores = malloc(sizeof(float) * widest);
#pragma omp for schedule(dynamic, 2)
        for (int64_t pair = 0; pair < rows * kv_heads; pair++) {
            const int64_t *lim = limit + (pair / kv_heads) * nq;
            const float *K = kc + pair * capacity * d, *V = vc + pair * capacity * d;
            for (int64_t r = 0; r < nq; r++) {
                float *o = out + (pair * nq + r) * d;
                if (lim[r] < 1) { /* padding: a row verifying fewer draft tokens than others */
                    memset(o, 0, sizeof(float) * d);
                    continue;
                }
                score_row(q + (pair * nq + r) * d, K, lim[r], d, scale, scores);
                softmax(scores, lim[r]);
                mix_row(scores, V, lim[r], d, o);
            }
        }
        free(scores);
    }
}
