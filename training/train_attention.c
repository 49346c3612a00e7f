/* Causal attention over the rows of one packed training forward, and its backward, for training/fused.py.
 *
 * Why by hand: torch's CPU flash attention runs a SmolLM2 row's forward and backward at about a fifth of
 * this CPU's matmul rate (its backward three times its forward), a quarter of a `cgd` training step;
 * composing it from torch's matmuls is slower still, since each softmax pass then streams the scores
 * through memory. The fused attention kernels that exist (flash-attention, xformers, Liger) are
 * CUDA/Triton only. This is the same flash-attention scheme (tiles of 64 queries x 64 keys that stay in
 * cache, an online softmax in the forward, the backward recomputing each tile from the forward's
 * log-sum-exp) with AVX-512 register tiles.
 *
 * Layout: the projections' own, token-major: q, out [tokens, heads, 64], k, v [tokens, kv_heads, 64]; a
 * pack's row r spans tokens [starts[r], starts[r + 1]) and sees only itself, causally. Query head h
 * reads kv head h / (heads / kv_heads) (grouped-query attention). Head size 64 only (SmolLM2's); other
 * sizes and CPUs without AVX-512 keep torch's attention (`attention_available`).
 */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../cpu_engine/simd.h"

#define D 64 /* head size */
#define T 64 /* tile: queries and keys */

#if defined(__AVX512F__) && defined(__FMA__)

int attention_available(void) { return 1; }

/* s[i][0..T) = x[i] . yt[.][0..T) for i < rows (R at a time): x rows of D floats `xs` apart, yt a D x T tile. */
static inline __attribute__((always_inline)) void dots_block(int R, float *s, const float *x, int64_t xs,
                                                             const float *yt) {
    __m512 acc[4][4];
    for (int r = 0; r < R; r++)
        for (int v = 0; v < 4; v++) acc[r][v] = _mm512_setzero_ps();
    for (int c = 0; c < D; c++) {
        __m512 y[4];
        for (int v = 0; v < 4; v++) y[v] = _mm512_loadu_ps(yt + c * T + 16 * v);
        for (int r = 0; r < R; r++) {
            __m512 b = _mm512_set1_ps(x[r * xs + c]);
            for (int v = 0; v < 4; v++) acc[r][v] = _mm512_fmadd_ps(b, y[v], acc[r][v]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int v = 0; v < 4; v++) _mm512_storeu_ps(s + r * T + 16 * v, acc[r][v]);
}

static void dots(float *s, const float *x, int64_t xs, const float *yt, int rows) {
    int i = 0;
    for (; i + 4 <= rows; i += 4) dots_block(4, s + i * T, x + i * xs, xs, yt);
    for (; i < rows; i++) dots_block(1, s + i * T, x + i * xs, xs, yt);
}

/* acc[a][0..D) += sum_b w(a, b) z[b][0..D) for a < rows (R at a time), b < n: w(a, b) = w[a * wa + b * wb],
 * acc rows `as` apart, z rows `zs` apart. */
static inline __attribute__((always_inline)) void acc_block(int R, float *acc, int64_t as, const float *w,
                                                            int64_t wa, int64_t wb, const float *z, int64_t zs,
                                                            int n) {
    __m512 sum[4][4];
    for (int r = 0; r < R; r++)
        for (int v = 0; v < 4; v++) sum[r][v] = _mm512_setzero_ps();
    for (int b = 0; b < n; b++) {
        __m512 y[4];
        for (int v = 0; v < 4; v++) y[v] = _mm512_loadu_ps(z + b * zs + 16 * v);
        for (int r = 0; r < R; r++) {
            __m512 c = _mm512_set1_ps(w[r * wa + b * wb]);
            for (int v = 0; v < 4; v++) sum[r][v] = _mm512_fmadd_ps(c, y[v], sum[r][v]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int v = 0; v < 4; v++) {
            float *o = acc + r * as + 16 * v;
            _mm512_storeu_ps(o, _mm512_add_ps(_mm512_loadu_ps(o), sum[r][v]));
        }
}

static void accumulate(float *acc, int64_t as, const float *w, int64_t wa, int64_t wb, const float *z, int64_t zs,
                       int rows, int n) {
    int a = 0;
    for (; a + 4 <= rows; a += 4) acc_block(4, acc + a * as, as, w + a * wa, wa, wb, z, zs, n);
    for (; a < rows; a++) acc_block(1, acc + a * as, as, w + a * wa, wa, wb, z, zs, n);
}

/* Tokens of tile i in a row of n. */
static inline int tile_len(int64_t n, int64_t i) { return n - i * T < T ? (int)(n - i * T) : T; }

/* The lanes of a tile row's vector v (columns 16v .. 16v + 15) at or before column `last`. */
static inline __mmask16 through(int last, int v) {
    const int first = last - 16 * v + 1; /* first masked lane */
    return first >= 16 ? 0xFFFF : first <= 0 ? 0 : (__mmask16)((1u << first) - 1);
}

/* Scores of a tile to probabilities in place: p = e^(s * scale - lse[i]) (lse spaced `ls` apart), zero
 * above the diagonal when the tile is on it (`diagonal`; exp16 gives ~1e-38, not 0, far below zero). */
static void probabilities(float *s, int rows, float scale, const float *lse, int64_t ls, int diagonal) {
    const __m512 sc = _mm512_set1_ps(scale);
    for (int i = 0; i < rows; i++) {
        const __m512 l = _mm512_set1_ps(lse[i * ls]);
        for (int v = 0; v < 4; v++) {
            float *p = s + i * T + 16 * v;
            __m512 e = exp16(_mm512_fmsub_ps(_mm512_loadu_ps(p), sc, l));
            _mm512_storeu_ps(p, diagonal ? _mm512_maskz_mov_ps(through(i, v), e) : e);
        }
    }
}

typedef struct {
    int64_t start, n, g, tile, ntiles, tile_base, cost;
} item;

static int heavier(const void *a, const void *b) {
    const item *x = a, *y = b;
    return (y->cost > x->cost) - (y->cost < x->cost);
}

/* One work item per (row, kv head, tile), the heaviest first (a forward's query tile sees the tiles up to
 * its own, a backward's key tile the query tiles from its own on), so the last items, dealt out
 * dynamically or in turn, are the short ones. */
static item *work(const int64_t *starts, int64_t rows, int64_t kv_heads, int backward, int64_t *count,
                  int64_t *total_tiles) {
    int64_t nt = 0, c = 0;
    for (int64_t r = 0; r < rows; r++) nt += (starts[r + 1] - starts[r] + T - 1) / T;
    item *items = malloc(sizeof(item) * nt * kv_heads);
    for (int64_t r = 0, base = 0; r < rows; r++) {
        const int64_t n = starts[r + 1] - starts[r], ntiles = (n + T - 1) / T;
        for (int64_t g = 0; g < kv_heads; g++)
            for (int64_t t = 0; t < ntiles; t++)
                items[c++] = (item){starts[r], n, g, t, ntiles, base, backward ? ntiles - t : t + 1};
        base += ntiles;
    }
    qsort(items, c, sizeof(item), heavier);
    *count = c;
    *total_tiles = nt;
    return items;
}

/* Where item `it`'s row keeps its tile i in a [kv_heads][nt] grid of transposed D x T tiles. */
static inline float *tile_at(float *tiles, int64_t nt, item it, int64_t i) {
    return tiles + ((it.g * nt + it.tile_base + i) * D) * T;
}

/* Keys (or values) as transposed tiles, each item's own: tile[c][j] = k[tile * T + j, g, c], zero past
 * the row's end. */
static float *transposed(const float *k, const item *items, int64_t count, int64_t kv_heads, int64_t nt) {
    float *tiles = aligned_alloc(64, sizeof(float) * kv_heads * nt * D * T);
#pragma omp parallel for
    for (int64_t w = 0; w < count; w++) {
        const item it = items[w];
        float *tile = tile_at(tiles, nt, it, it.tile);
        const int n = tile_len(it.n, it.tile);
        for (int j = 0; j < n; j++) {
            const float *src = k + ((it.start + it.tile * T + j) * kv_heads + it.g) * D;
            for (int c = 0; c < D; c++) tile[c * T + j] = src[c];
        }
        if (n < T)
            for (int c = 0; c < D; c++) memset(tile + c * T + n, 0, sizeof(float) * (T - n));
    }
    return tiles;
}

void attention_forward(const float *q, const float *k, const float *v, float *out, float *lse, const int64_t *starts,
                       int64_t rows, int64_t heads, int64_t kv_heads, float scale) {
    const int64_t group = heads / kv_heads, qs = heads * D, ks = kv_heads * D;
    int64_t count, nt;
    item *items = work(starts, rows, kv_heads, 0, &count, &nt);
    float *kt = transposed(k, items, count, kv_heads, nt);
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t w = 0; w < count; w++) {
        const item it = items[w];
        const int64_t t0 = it.tile * T;
        const int nq = tile_len(it.n, it.tile);
        float s[T * T] __attribute__((aligned(64))), acc[T * D] __attribute__((aligned(64)));
        float m[T], l[T];
        for (int64_t h = it.g * group; h < (it.g + 1) * group; h++) {
            const float *qrow = q + (it.start + t0) * qs + h * D;
            memset(acc, 0, sizeof acc);
            for (int i = 0; i < T; i++) m[i] = -INFINITY, l[i] = 0.0f;
            for (int64_t kt_i = 0; kt_i <= it.tile; kt_i++) {
                const int nk = tile_len(it.n, kt_i);
                dots(s, qrow, qs, tile_at(kt, nt, it, kt_i), nq);
                const int diagonal = kt_i == it.tile;
                const __m512 sc = _mm512_set1_ps(scale);
                for (int i = 0; i < nq; i++) { /* online softmax: rescale what the earlier tiles summed */
                    float *p = s + i * T;
                    const int last = diagonal ? i : nk - 1;
                    __mmask16 keep[4];
                    __m512 vmax = _mm512_set1_ps(-INFINITY);
                    for (int v = 0; v < 4; v++) {
                        keep[v] = through(last, v);
                        vmax = _mm512_mask_max_ps(vmax, keep[v], vmax, _mm512_mul_ps(_mm512_loadu_ps(p + 16 * v), sc));
                    }
                    const float mx = fmaxf(m[i], _mm512_reduce_max_ps(vmax)), alpha = expf(m[i] - mx);
                    const __m512 vm = _mm512_set1_ps(mx);
                    __m512 sum = _mm512_setzero_ps();
                    for (int v = 0; v < 4; v++) {
                        __m512 e = _mm512_maskz_mov_ps(keep[v], exp16(_mm512_fmsub_ps(_mm512_loadu_ps(p + 16 * v), sc, vm)));
                        sum = _mm512_add_ps(sum, e);
                        _mm512_storeu_ps(p + 16 * v, e);
                    }
                    l[i] = l[i] * alpha + _mm512_reduce_add_ps(sum);
                    m[i] = mx;
                    if (alpha != 1.0f)
                        for (int v = 0; v < 4; v++) {
                            float *o = acc + i * D + 16 * v;
                            _mm512_storeu_ps(o, _mm512_mul_ps(_mm512_loadu_ps(o), _mm512_set1_ps(alpha)));
                        }
                }
                accumulate(acc, D, s, T, 1, v + (it.start + kt_i * T) * ks + it.g * D, ks, nq, nk);
            }
            for (int i = 0; i < nq; i++) {
                float *o = out + (it.start + t0 + i) * qs + h * D;
                const float inv = 1.0f / l[i];
                for (int c = 0; c < D; c++) o[c] = acc[i * D + c] * inv;
                lse[(it.start + t0 + i) * heads + h] = m[i] + logf(l[i]);
            }
        }
    }
    free(kt);
    free(items);
}

/* dq must be zeroed by the caller; dk and dv are written whole. lse: the forward's, per (token, head). Key
 * tiles run in parallel, so every query tile's dq gets sums from several threads: each thread past the
 * first sums into its own copy, added at the end. The tiles are dealt to the threads in a fixed order,
 * so the sums, and a training run, come out bit for bit the same each time (for a given thread count). */
void attention_backward(const float *q, const float *k, const float *v, const float *out, const float *dout,
                        const float *lse, float *dq, float *dk, float *dv, const int64_t *starts, int64_t rows,
                        int64_t heads, int64_t kv_heads, float scale) {
    const int64_t group = heads / kv_heads, qs = heads * D, ks = kv_heads * D;
    const int64_t tokens = starts[rows];
    float *delta = malloc(sizeof(float) * tokens * heads); /* rowsum(dout * out) per (token, head) */
#pragma omp parallel for
    for (int64_t t = 0; t < tokens * heads; t++) {
        __m512 s = _mm512_setzero_ps();
        for (int v4 = 0; v4 < 4; v4++)
            s = _mm512_fmadd_ps(_mm512_loadu_ps(dout + t * D + 16 * v4), _mm512_loadu_ps(out + t * D + 16 * v4), s);
        delta[t] = _mm512_reduce_add_ps(s);
    }
    int64_t count, nt;
    item *items = work(starts, rows, kv_heads, 1, &count, &nt);
    float *kt = transposed(k, items, count, kv_heads, nt), *vt = transposed(v, items, count, kv_heads, nt);
    const int threads = omp_get_max_threads();
    float *copies = threads > 1 ? calloc((size_t)(threads - 1) * tokens * qs, sizeof(float)) : NULL;
#pragma omp parallel for schedule(static, 1) /* the same thread sums the same tiles every run */
    for (int64_t w = 0; w < count; w++) {
        const item it = items[w];
        const int thread = omp_get_thread_num();
        float *dq_sum = thread ? copies + (size_t)(thread - 1) * tokens * qs : dq;
        float p[T * T] __attribute__((aligned(64))), ds[T * T] __attribute__((aligned(64)));
        float dk_acc[T * D] __attribute__((aligned(64))), dv_acc[T * D] __attribute__((aligned(64)));
        const int64_t ki = it.tile;
        const int nk = tile_len(it.n, ki);
        const float *ktile = tile_at(kt, nt, it, ki), *vtile = tile_at(vt, nt, it, ki);
        const float *krows = k + (it.start + ki * T) * ks + it.g * D;
        memset(dk_acc, 0, sizeof dk_acc);
        memset(dv_acc, 0, sizeof dv_acc);
        for (int64_t h = it.g * group; h < (it.g + 1) * group; h++)
            for (int64_t qi = ki; qi < it.ntiles; qi++) {
                const int nq = tile_len(it.n, qi);
                const int64_t t0 = it.start + qi * T;
                const float *qrows = q + t0 * qs + h * D, *dorows = dout + t0 * qs + h * D;
                dots(p, qrows, qs, ktile, nq);
                probabilities(p, nq, scale, lse + t0 * heads + h, heads, qi == ki);
                dots(ds, dorows, qs, vtile, nq);
                const __m512 sc = _mm512_set1_ps(scale);
                for (int i = 0; i < nq; i++) { /* ds = p * (dp - delta) * scale */
                    const __m512 d = _mm512_set1_ps(delta[(t0 + i) * heads + h]);
                    for (int v4 = 0; v4 < 4; v4++) {
                        float *x = ds + i * T + 16 * v4;
                        __m512 g = _mm512_mul_ps(_mm512_sub_ps(_mm512_loadu_ps(x), d), sc);
                        _mm512_storeu_ps(x, _mm512_mul_ps(g, _mm512_loadu_ps(p + i * T + 16 * v4)));
                    }
                }
                accumulate(dv_acc, D, p, 1, T, dorows, qs, nk, nq);
                accumulate(dk_acc, D, ds, 1, T, qrows, qs, nk, nq);
                accumulate(dq_sum + t0 * qs + h * D, qs, ds, T, 1, krows, ks, nq, nk);
            }
        for (int j = 0; j < nk; j++) {
            memcpy(dk + (it.start + ki * T + j) * ks + it.g * D, dk_acc + j * D, sizeof(float) * D);
            memcpy(dv + (it.start + ki * T + j) * ks + it.g * D, dv_acc + j * D, sizeof(float) * D);
        }
    }
#pragma omp parallel for
    for (int64_t x = 0; x < tokens * qs; x++)
        for (int c = 0; c < threads - 1; c++) dq[x] += copies[(size_t)c * tokens * qs + x];
    free(copies);
    free(kt);
    free(vt);
    free(items);
    free(delta);
}

#else
int attention_available(void) { return 0; }
void attention_forward(const float *q, const float *k, const float *v, float *out, float *lse, const int64_t *starts,
                       int64_t rows, int64_t heads, int64_t kv_heads, float scale) {}
void attention_backward(const float *q, const float *k, const float *v, const float *out, const float *dout,
                        const float *lse, float *dq, float *dk, float *dv, const int64_t *starts, int64_t rows,
                        int64_t heads, int64_t kv_heads, float scale) {}
#endif
