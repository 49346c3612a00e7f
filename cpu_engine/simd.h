/* What the native kernels share (attend.c, elementwise.c, training/train_kernels.c, training/train_attention.c):
 * whether the AVX2/FMA paths are built, the one lane sum they use (a fixed order, so a row's bits never
 * depend on which kernel summed it), and a vector e^x. */
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

/* e^x, |x| <= 88: 2^n e^r with |r| <= ln2/2 (Cody-Waite split of ln 2) and Cephes' degree-7 polynomial.
 * One body for each vector width: P is the intrinsics' prefix, SI its integer suffix, ROUND its
 * round-to-nearest. */
#define EXP_BODY(P, SI, ROUND)                                                                                   \
    x = P##_min_ps(P##_max_ps(x, P##_set1_ps(-87.3f)), P##_set1_ps(88.0f));                                      \
    __typeof__(x) n = ROUND(P##_mul_ps(x, P##_set1_ps(1.44269504088896341f)));                                   \
    __typeof__(x) r = P##_fnmadd_ps(n, P##_set1_ps(0.693359375f), x);                                            \
    r = P##_fnmadd_ps(n, P##_set1_ps(-2.12194440e-4f), r);                                                       \
    __typeof__(x) p = P##_set1_ps(1.9875691500e-4f);                                                             \
    const float c[] = {1.3981999507e-3f, 8.3334519073e-3f, 4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f}; \
    for (int i = 0; i < 5; i++) p = P##_fmadd_ps(p, r, P##_set1_ps(c[i]));                                       \
    p = P##_fmadd_ps(p, P##_mul_ps(r, r), P##_add_ps(r, P##_set1_ps(1.0f)));                                     \
    return P##_mul_ps(p, P##_castsi##SI##_ps(P##_slli_epi32(P##_add_epi32(P##_cvtps_epi32(n), P##_set1_epi32(127)), 23)));

#define ROUND8(v) _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
static inline __m256 exp8(__m256 x) { EXP_BODY(_mm256, 256, ROUND8) }

#if defined(__AVX512F__)
#define ROUND16(v) _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
static inline __m512 exp16(__m512 x) { EXP_BODY(_mm512, 512, ROUND16) }
#endif
#else
#define VEC 0
#endif

/* The vector level a library was built at, for cpu_engine/features.py; each library exports it once
 * (elementwise.c, training/train_kernels.c): int simd_level(void) { return SIMD_LEVEL; } */
#if VEC && defined(__AVX512F__)
#define SIMD_LEVEL 512
#elif VEC
#define SIMD_LEVEL 256
#else
#define SIMD_LEVEL 0
#endif

#endif
