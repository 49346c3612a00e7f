/* y[M, N] = x[M, K] . W^T for the decoder's linear layers, for harness/backends/native.py.
 *
 * Why not oneDNN: with this model's K = 576 and a few dozen rows, its packed kernel reaches 60-70 %
 * of this CPU's fp32 peak on warm weights and much less on a decode step's cold ones (measured
 * 65 GFLOP/s at 18 rows). Here W is packed once into panels of 16 output columns, [N/16][K][16];
 * a micro-kernel keeps up to 12 accumulator vectors in registers while a panel streams past, and
 * panels are shared out between threads.
 *
 * Every output element is one fused multiply-add chain over k = 0 .. K-1, in that order, whatever
 * M is or which rows share the call: a row's result does not depend on its batch.
 */
#include <stdint.h>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#include <omp.h>

#define NR 16
#define ROWS_PER_CHUNK 192 /* rows whose x stays in L2 while every panel passes over them */

/* C[mr rows][np panels x 16] for one group of np adjacent panels; mr * 2 * np <= 12 accumulators.
 * While it computes, the tile also prefetches `lines` cache lines from `next` (weights this thread
 * reads next), spread evenly over its k loop, so that a decode step's cold weights stream in behind
 * the FMAs instead of stalling them (measured on a 30-layer step: 18 rows 69 -> 57 ms of matmul). */
static inline __attribute__((always_inline)) void tile(const float *x, int64_t ldx, const float *w, int64_t K,
                                                      float *y, int64_t ldy, const int mr, const int np,
                                                      const float *next, int64_t lines) {
    __m256 acc[6][6][2];
    for (int r = 0; r < mr; r++)
        for (int p = 0; p < np; p++) acc[r][p][0] = acc[r][p][1] = _mm256_setzero_ps();
    const int64_t panel = K * NR;
    int64_t owed = 0;
    for (int64_t k = 0; k < K; k++) {
        for (owed += lines; owed >= K; owed -= K, next += NR) _mm_prefetch((const char *)next, _MM_HINT_T1);
        for (int r = 0; r < mr; r++) {
            __m256 a = _mm256_broadcast_ss(x + r * ldx + k);
            for (int p = 0; p < np; p++) {
                const float *b = w + p * panel + k * NR;
                acc[r][p][0] = _mm256_fmadd_ps(a, _mm256_loadu_ps(b), acc[r][p][0]);
                acc[r][p][1] = _mm256_fmadd_ps(a, _mm256_loadu_ps(b + 8), acc[r][p][1]);
            }
        }
    }
    for (int r = 0; r < mr; r++)
        for (int p = 0; p < np; p++) {
            _mm256_storeu_ps(y + r * ldy + p * NR, acc[r][p][0]);
            _mm256_storeu_ps(y + r * ldy + p * NR + 8, acc[r][p][1]);
        }
}

/* Rows [m0, m1) against panels [p, p + np): blocks of 6 rows, then the 1-5 left over. The tiles share
 * out the prefetch of the next np panels (`more`: whether this thread has them). */
static void rows_panel(const float *x, const float *wp, float *y, int64_t m0, int64_t m1, int64_t K,
                       int64_t N, int64_t p, int np, int more) {
    const float *w = wp + p * K * NR;
    const int64_t lines = more && np == 1 ? K : 0, tiles = np == 1 ? (m1 - m0 + 5) / 6 : m1 - m0;
    const float *next = w + np * K * NR;
    int64_t m = m0;
#define LO(t) (lines * (t) / tiles)
#define TILE(mr, np_, t) tile(x + m * K, K, w, K, y + m * N + p * NR, N, mr, np_, next + LO(t) * NR, LO((t) + 1) - LO(t))
    if (np == 1) {
        int64_t t = 0;
        for (; m + 6 <= m1; m += 6, t++) TILE(6, 1, t);
        switch (m1 - m) {
            case 5: TILE(5, 1, t); break;
            case 4: TILE(4, 1, t); break;
            case 3: TILE(3, 1, t); break;
            case 2: TILE(2, 1, t); break;
            case 1: TILE(1, 1, t); break;
        }
        return;
    }
    /* Few rows: several panels at once keep enough independent chains in flight. */
    for (int64_t t = 0; m < m1; m++, t++) {
        if (np == 6) TILE(1, 6, t);
        else for (int q = 0; q < np; q++)
            tile(x + m * K, K, w + q * K * NR, K, y + m * N + (p + q) * NR, N, 1, 1, next, 0);
    }
#undef TILE
#undef LO
}

int gemm_available(void) { return 1; }

void gemm(const float *x, const float *wp, float *y, int64_t M, int64_t N, int64_t K) {
    const int64_t panels = N / NR;
    /* One row alone would leave 2 chains per panel: take 6 panels per tile instead. */
    const int np = M < 6 ? 6 : 1;
    const int64_t groups = (panels + np - 1) / np;
    for (int64_t c0 = 0; c0 < M; c0 += ROWS_PER_CHUNK) {
        const int64_t c1 = c0 + ROWS_PER_CHUNK < M ? c0 + ROWS_PER_CHUNK : M;
#pragma omp parallel
        {
            /* Each thread takes a contiguous run of groups (as schedule(static) would), so that it
             * knows which panels it reads next. */
            const int64_t threads = omp_get_num_threads(), id = omp_get_thread_num();
            const int64_t g0 = groups * id / threads, g1 = groups * (id + 1) / threads;
            for (int64_t g = g0; g < g1; g++) {
                const int64_t p = g * np;
                const int n = p + np <= panels ? np : (int)(panels - p);
                rows_panel(x, wp, y, c0, c1, K, N, p, n, g + 1 < g1 && p + 2 * np <= panels);
            }
        }
    }
}
#else
int gemm_available(void) { return 0; }
void gemm(const float *x, const float *wp, float *y, int64_t M, int64_t N, int64_t K) {
    (void)x; (void)wp; (void)y; (void)M; (void)N; (void)K;
}
#endif
