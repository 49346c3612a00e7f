/* The training step's token loss, fused, for training/fused.py: the loss over the vocabulary with its
 * gradient and the logged entropy and top-1, in two passes. (RMSNorm, the SiLU gate and RoPE were here
 * too, until perf/kernels.py found them slower than torch.compile: the model's own torch ops run them.)
 *
 * Why by hand: in torch each of these is a chain of small ops, each a pass over memory with its own
 * allocation; autograd's backward of the chain is longer still. On a 2-core CPU the chains took about
 * a fifth of a SmolLM2-135M training step (docs/performance.md). The fused kernels for CPUs that exist
 * (Liger, the kernels hub, Apex) are CUDA/Triton only.
 *
 * Rows are independent: a row's result never depends on the other rows of its batch. Sums over a row
 * accumulate eight lanes at a time into float blocks, then in double.
 */
#include <math.h>
#include <omp.h>
#include <stdint.h>

#include "../cpu_engine/simd.h"

#define BIG (1 << 16) /* elements below which one thread does the whole call */
#define BLOCK 1024    /* elements summed in float before the double accumulator */

int simd_level(void) { return SIMD_LEVEL; }

/* --- token loss ------------------------------------------------------------------------------ */

/* Index of the first maximum of x[0..n) (as torch.argmax), and the maximum. */
static int64_t first_max(const float *x, int64_t n, float *max) {
    float m = x[0];
    int64_t j = 0;
#if VEC
    if (n >= 8) {
        __m256 acc = _mm256_loadu_ps(x);
        for (j = 8; j + 8 <= n; j += 8) acc = _mm256_max_ps(acc, _mm256_loadu_ps(x + j));
        float lanes[8];
        _mm256_storeu_ps(lanes, acc);
        for (int i = 0; i < 8; i++) m = lanes[i] > m ? lanes[i] : m;
    }
#endif
    for (; j < n; j++) m = x[j] > m ? x[j] : m;
    *max = m;
    for (j = 0; j < n; j++)
        if (x[j] == m) return j;
    return 0; /* only a row of NaNs has no maximum */
}

/* sum of e^(x - m) and of e^(x - m) * x over x[0..n) */
static void exp_sums(const float *x, int64_t n, float m, double *sum, double *dot) {
    double s = 0.0, t = 0.0;
    for (int64_t b = 0; b < n; b += BLOCK) {
        const int64_t e = b + BLOCK < n ? b + BLOCK : n;
        int64_t j = b;
        float bs = 0.0f, bt = 0.0f;
#if VEC
        __m256 vs = _mm256_setzero_ps(), vt = _mm256_setzero_ps(), vm = _mm256_set1_ps(m);
        for (; j + 8 <= e; j += 8) {
            __m256 v = _mm256_loadu_ps(x + j), p = exp8(_mm256_sub_ps(v, vm));
            vs = _mm256_add_ps(vs, p);
            vt = _mm256_fmadd_ps(p, v, vt);
        }
        bs = lanes_sum(vs);
        bt = lanes_sum(vt);
#endif
        for (; j < e; j++) {
            const float p = expf(x[j] - m);
            bs += p;
            bt += p * x[j];
        }
        s += bs;
        t += bt;
    }
    *sum = s;
    *dot = t;
}

/* grad[0..n) = e^(x - m) / s */
static void softmax_row(const float *x, int64_t n, float m, float inv_s, float *grad) {
    int64_t j = 0;
#if VEC
    __m256 vm = _mm256_set1_ps(m), vi = _mm256_set1_ps(inv_s);
    for (; j + 8 <= n; j += 8)
        _mm256_storeu_ps(grad + j, _mm256_mul_ps(exp8(_mm256_sub_ps(_mm256_loadu_ps(x + j), vm)), vi));
#endif
    for (; j < n; j++) grad[j] = expf(x[j] - m) * inv_s;
}

/* Per row r of logits [rows][vocab] and its target: nll[r] = logsumexp - logit of the target,
 * entropy[r] of the row's softmax, top[r] = torch.argmax of the row; grad (when not NULL) = the
 * softmax minus the target's one-hot, the gradient of nll[r] with respect to the row. */
void token_loss(const float *logits, const int64_t *target, float *grad, float *nll, float *entropy,
                int64_t *top, int64_t rows, int64_t vocab) {
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < rows; r++) {
        const float *x = logits + r * vocab;
        float m;
        top[r] = first_max(x, vocab, &m);
        double s, t;
        exp_sums(x, vocab, m, &s, &t);
        const double lse = m + log(s);
        nll[r] = (float)(lse - x[target[r]]);
        entropy[r] = (float)(lse - t / s);
        if (grad) {
            float *g = grad + r * vocab;
            softmax_row(x, vocab, m, (float)(1.0 / s), g);
            g[target[r]] -= 1.0f;
        }
    }
}
