// Valid 2-D correlation of float64 images with a separable kernel outer(hc, hr): the column
// pass then the row pass, row by row, so that the intermediate row stays in the L1 cache. Built on first use by unifuse/native.py and called through ctypes
// from unifuse/metrics/functional/separable_native.py; it replaces the banded shifted sums of
// unifuse/metrics/functional/matlab.py (one tensor pass per tap) for the metrics' filters.
//
// The order of the arithmetic is that of the shifted sums: taps in order, zero taps skipped,
// the first one a product, each further one a fused multiply-add (as PyTorch's vectorised
// add with alpha computes it; a multiply and an add where the CPU has no FMA). Every FMA is
// explicit, so the compiler's own contraction setting changes nothing.

#include <cstdint>

typedef int64_t i64;

namespace {

inline double madd(double x, double c, double acc) {
#ifdef __FMA__
    return __builtin_fma(x, c, acc);
#else
    return acc + c * x;
#endif
}

// out[c] = sum_t w[t] * src[t * stride + c] over the nonzero taps, c < n; 16 outputs at a time
// are kept in registers through all taps (same per-element order: first a product, then FMAs)
inline void taps_row(const double* src, i64 stride, const double* w, const int* idx, int nt, i64 n, double* out) {
    const int V = 16;
    i64 c0 = 0;
    for (; c0 + V <= n; c0 += V) {
        double acc[V];
        const double* s0 = src + idx[0] * stride + c0;
        for (int v = 0; v < V; ++v) acc[v] = s0[v] * w[0];
        for (int t = 1; t < nt; ++t) {
            const double* s = src + idx[t] * stride + c0;
            const double wt = w[t];
            for (int v = 0; v < V; ++v) acc[v] = madd(s[v], wt, acc[v]);
        }
        for (int v = 0; v < V; ++v) out[c0 + v] = acc[v];
    }
    if (c0 < n) {
        const double* s0 = src + idx[0] * stride;
        for (i64 c = c0; c < n; ++c) out[c] = s0[c] * w[0];
        for (int t = 1; t < nt; ++t) {
            const double* s = src + idx[t] * stride;
            const double wt = w[t];
            for (i64 c = c0; c < n; ++c) out[c] = madd(s[c], wt, out[c]);
        }
    }
}

}  // namespace

extern "C" {

int uf_sep_abi(void) { return 1; }

// x: n images of hp x wp (contiguous); hc: kh column taps; hr: kw row taps; out: n images of
// (hp - kh + 1) x (wp - kw + 1); tmp: wp doubles of scratch. Row by row: the column pass makes
// one intermediate row (in L1), the row pass turns it into the output row; the kh input rows
// a row reads are mostly those of the row before (in L2). Returns 0, or 1 for bad sizes.
int uf_sep_valid(const double* x, i64 n, i64 hp, i64 wp, const double* hc, int kh, const double* hr, int kw,
                 double* out, double* tmp) {
    const i64 ho = hp - kh + 1, wo = wp - kw + 1;
    double wc[256], wr[256];
    int ic[256], ir[256];
    int nc = 0, nr = 0;
    if (kh > 256 || kw > 256 || ho <= 0 || wo <= 0) return 1;
    for (int i = 0; i < kh; ++i)
        if (hc[i] != 0.0) { wc[nc] = hc[i]; ic[nc++] = i; }
    for (int j = 0; j < kw; ++j)
        if (hr[j] != 0.0) { wr[nr] = hr[j]; ir[nr++] = j; }
    if (nc == 0 || nr == 0) return 1;
    for (i64 b = 0; b < n; ++b) {
        const double* xi = x + b * hp * wp;
        double* oi = out + b * ho * wo;
        for (i64 r = 0; r < ho; ++r) {
            taps_row(xi + r * wp, wp, wc, ic, nc, wp, tmp);
            taps_row(tmp, 1, wr, ir, nr, wo, oi + r * wo);
        }
    }
    return 0;
}

}  // extern "C"
