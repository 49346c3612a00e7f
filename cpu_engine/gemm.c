/* y[M, N] = x[M, K] . W^T for the decoder's linear layers, for cpu_engine/native.py.
 *
 * Why not oneDNN: with this model's K = 576 and a few dozen rows, its packed kernel falls well short
 * of the CPU's fp32 peak on a decode step's cold weights (docs/performance.md). Here W is packed once into panels of 16 output columns, [N/16][K][16];
 * a micro-kernel keeps its accumulator vectors in registers while a panel streams past, and
 * panels are shared out between threads.
 *
 * Two builds of the micro-kernel, picked by -march=native: AVX2 (8-float vectors, 12 accumulators:
 * 6 rows x 1 panel, or 1 row x 6 panels) and, where the CPU has AVX-512, 16-float vectors, where one
 * panel row is one vector: 24 accumulators (6 rows x 4 panels; below 6 rows, all the rows x 5-8
 * panels). Measured against the AVX2 build on the 2-core AVX-512 machine, 30 layers of weights plus
 * the LM head (538 MB, cold-ish) per step, 2 threads, alternating: 193 -> 350 GFLOP/s at 64 rows,
 * 199 -> 322 at 256, 160 -> 167 at 18 and 15.2 -> 15.7 at 1 (those two wait on memory, not on the
 * FMAs); one thread on one warm 3072 x 576 weight, 112 -> 207 at 64-256 rows.
 *
 * Every output element is one fused multiply-add chain over k = 0 .. K-1, in that order, whatever
 * M is, which rows share the call or which build runs: a row's result does not depend on its batch,
 * and the AVX2 and AVX-512 builds give the same bits.
 */
#include <stdint.h>

#if defined(__AVX512F__)
#include <immintrin.h>
#include <omp.h>

#define NR 16
#define ROWS_PER_CHUNK 192 /* as below */
#define MR 6 /* rows per tile from 6 rows up, against NP panels: 24 accumulators */
#define NP 4

/* C[mr rows][np panels x 16], one zmm accumulator per row and panel (one k row of a panel is one zmm, one
 * cache line); prefetches `lines` lines from `next` over its k loop, as the AVX2 tile below does. */
static inline __attribute__((always_inline)) void tile(const float *x, int64_t ldx, const float *w, int64_t K,
                                                      float *y, int64_t ldy, const int mr, const int np,
                                                      const float *next, int64_t lines) {
    __m512 acc[8][8];
    for (int r = 0; r < mr; r++)
        for (int p = 0; p < np; p++) acc[r][p] = _mm512_setzero_ps();
    const int64_t panel = K * NR;
    int64_t owed = 0;
    for (int64_t k = 0; k < K; k++) {
        for (owed += lines; owed >= K; owed -= K, next += NR) _mm_prefetch((const char *)next, _MM_HINT_T1);
        __m512 b[8];
        for (int p = 0; p < np; p++) b[p] = _mm512_loadu_ps(w + p * panel + k * NR);
        for (int r = 0; r < mr; r++) {
            __m512 a = _mm512_set1_ps(x[r * ldx + k]);
            for (int p = 0; p < np; p++) acc[r][p] = _mm512_fmadd_ps(a, b[p], acc[r][p]);
        }
    }
    for (int r = 0; r < mr; r++)
        for (int p = 0; p < np; p++) _mm512_storeu_ps(y + r * ldy + p * NR, acc[r][p]);
}

/* tile() with mr and np as constants, for the shapes gemm() asks for (mr * np <= 28). */
static void any_tile(const float *x, int64_t ldx, const float *w, int64_t K, float *y, int64_t ldy, int mr, int np,
                     const float *next, int64_t lines) {
#define T(m, n) case (m) * 16 + (n): tile(x, ldx, w, K, y, ldy, m, n, next, lines); return;
#define UP_TO_3(m) T(m, 1) T(m, 2) T(m, 3)
#define UP_TO_4(m) UP_TO_3(m) T(m, 4)
#define UP_TO_5(m) UP_TO_4(m) T(m, 5)
#define UP_TO_8(m) UP_TO_5(m) T(m, 6) T(m, 7) T(m, 8)
    switch (mr * 16 + np) {
        UP_TO_8(1) UP_TO_8(2) UP_TO_8(3) UP_TO_8(4) UP_TO_5(5) UP_TO_4(6) UP_TO_4(7) UP_TO_3(8)
    }
#undef T
#undef UP_TO_3
#undef UP_TO_4
#undef UP_TO_5
#undef UP_TO_8
}

/* Rows [m0, m1) against panels [p, p + np): tiles of MR rows, the last two evened out (MR + 3 rows: two
 * tiles of 5 and 4 rather than MR and 3), or all the rows in one tile below MR. The tiles share out the
 * prefetch of the next `more` panels. */
static void rows_panel(const float *x, const float *wp, float *y, int64_t m0, int64_t m1, int64_t K, int64_t N,
                       int64_t p, int np, int more) {
    const float *w = wp + p * K * NR, *next = w + np * K * NR;
    const int64_t rows = m1 - m0, full = rows / MR, rest = rows % MR;
    const int64_t tiles = rows <= MR ? 1 : rest ? full + 1 : full;
    const int64_t lines = more * K;
    int64_t m = m0;
    for (int64_t t = 0; t < tiles; t++) {
        int mr = MR;
        if (tiles == 1) mr = (int)rows;
        else if (rest && t == tiles - 2) mr = (int)((MR + rest + 1) / 2);
        else if (rest && t == tiles - 1) mr = (int)(m1 - m);
        const int64_t lo = lines * t / tiles, hi = lines * (t + 1) / tiles;
        any_tile(x + m * K, K, w, K, y + m * N + p * NR, N, mr, np, next + lo * NR, hi - lo);
        m += mr;
    }
}

int gemm_available(void) { return 1; }

void gemm(const float *x, const float *wp, float *y, int64_t M, int64_t N, int64_t K) {
    const int64_t panels = N / NR;
    /* Below 6 rows all the rows share one tile, over enough panels for 8 or more chains (and at most 31
     * registers with the panels' vectors). */
    static const int few[MR] = {0, 8, 8, 6, 6, 5};
    const int np = M < MR ? few[M] : NP;
    for (int64_t c0 = 0; c0 < M; c0 += ROWS_PER_CHUNK) {
        const int64_t c1 = c0 + ROWS_PER_CHUNK < M ? c0 + ROWS_PER_CHUNK : M;
#pragma omp parallel
        {
            /* Each thread takes a contiguous run of panels, cut into groups of at most np, as even as can be. */
            const int64_t threads = omp_get_num_threads(), id = omp_get_thread_num();
            const int64_t p0 = panels * id / threads, p1 = panels * (id + 1) / threads;
            const int64_t groups = (p1 - p0 + np - 1) / np;
            for (int64_t g = 0; g < groups; g++) {
                const int64_t q0 = p0 + (p1 - p0) * g / groups, q1 = p0 + (p1 - p0) * (g + 1) / groups;
                const int64_t q2 = p0 + (p1 - p0) * (g + 2) / groups;
                /* The next group's panels are prefetched from 6 rows up; below, the hardware prefetcher does
                 * better alone (docs/performance.md, "Design figures"). */
                const int more = g + 1 < groups && M >= MR ? (int)(q2 - q1) : 0;
                rows_panel(x, wp, y, c0, c1, K, N, q0, (int)(q1 - q0), more);
            }
        }
    }
}
#elif defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#include <omp.h>

#define NR 16
#define ROWS_PER_CHUNK 192 /* rows whose x stays in L2 while every panel passes over them */

/* C[mr rows][np panels x 16] for one group of np adjacent panels; mr * 2 * np <= 12 accumulators.
 * While it computes, the tile also prefetches `lines` cache lines from `next` (weights this thread
 * reads next), spread evenly over its k loop, so that a decode step's cold weights stream in behind
 * the FMAs instead of stalling them (docs/performance.md, "Design figures"). */
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
