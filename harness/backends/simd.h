/* What attend.c and elementwise.c share: whether the AVX2/FMA paths are built, and the one lane sum
 * both use (a fixed order, so a row's bits never depend on which kernel summed it). */
#ifndef HARNESS_SIMD_H
#define HARNESS_SIMD_H

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define VEC 1

/* ((v0 + v4) + (v2 + v6)) + ((v1 + v5) + (v3 + v7)) */
static inline float lanes_sum(__m256 v) {
    __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
}
#else
#define VEC 0
#endif

#endif
