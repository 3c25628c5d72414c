// Per-pixel work of phase congruency (Kovesi's phasecong3 as revised by Z. Liu, the
// myphasecong3 behind MEFB's Qp), one orientation at a time, float64. Built on first use by
// unifuse/native.py and called through ctypes from unifuse/metrics/functional/phase_native.py.
//
// The filter responses come from the FFTs on the Python side, planar: for each image,
// 2 S planes of npix pixels, the even (real) responses of scales 0..S-1, then the odd
// (imaginary) ones. Two passes per orientation:
//   uf_pc_median   median(An0(:).^2) of the smallest scale's amplitude An0 = sqrt(E0^2 + O0^2),
//                  the noise estimate (exact selection; the mean of the two middle values for an
//                  even count, as MATLAB's median)
//   uf_pc_orient   given the noise threshold T, one pass over the pixels that adds this
//                  orientation's weighted energy, amplitude sum and PC covariance terms to the
//                  running sums (what phase.py's PyTorch path does with ~25 tensor passes)
// The arithmetic follows the PyTorch path operation by operation (same order, no fused
// multiply-adds), so both agree to rounding (the sigmoid's exp comes from the C library here).
//
// unifuse-native-flags: -fno-math-errno
// (lets the compiler vectorise sqrt; the inputs are never negative, so no result changes)

#include <algorithm>
#include <cmath>
#include <cstdint>

#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

typedef int64_t i64;

extern "C" {

int uf_pc_abi(void) { return 1; }

// median of sqrt(e^2 + o^2)^2 over n pixels; scratch: n doubles. Returns the median.
double uf_pc_median(const double* e, const double* o, i64 n, double* scratch) {
    for (i64 i = 0; i < n; ++i) scratch[i] = std::sqrt(e[i] * e[i] + o[i] * o[i]);
    const i64 k = (n - 1) / 2;  // 0-based index of the lower middle value
    std::nth_element(scratch, scratch + k, scratch + n);
    const double lo = scratch[k];
    if (n % 2) return lo * lo;
    const double hi = *std::min_element(scratch + k + 1, scratch + n);
    return (lo * lo + hi * hi) / 2;
}

}  // extern "C"

namespace {

// One orientation of one image. eo: 2 s planes of npix (even scales, then odd scales).
// Running sums (npix each) updated in place: energy (sum_o W_o E_o), sum_an (sum_o sum_s A_so),
// covx2 / covy2 / covxy (PC_o^2 times cos^2, sin^2, cos sin of the orientation angle).
// Pixels go in blocks of B: two vectorisable passes around a scalar one for the exp.
// S > 0: that many scales (unrolled); S == 0: s scales (any count).
template <int S>
static void orient(const double* eo, i64 npix, int s, double t, double eps, double cut_off, double g, double cc,
                   double ss, double cs, double* energy, double* sum_an_acc, double* covx2, double* covy2,
                   double* covxy) {
    if (S > 0) s = S;
    const int B = 256;
    double sa[B], en[B], z[B];
    const double* ev = eo;
    const double* od = eo + (i64)s * npix;
    for (i64 p0 = 0; p0 < npix; p0 += B) {
        const int nb = (int)std::min<i64>(B, npix - p0);
        const double* e0 = ev + p0;
        const double* o0 = od + p0;
        for (int j = 0; j < nb; ++j) {
            const double e = e0[j], o = o0[j];
            double sum_an = std::sqrt(e * e + o * o), max_an = sum_an, sum_e = e, sum_o = o;
#pragma GCC unroll 16
            for (int k = 1; k < s; ++k) {
                const double ek = e0[(i64)k * npix + j], ok = o0[(i64)k * npix + j];
                const double a = std::sqrt(ek * ek + ok * ok);
                sum_an = sum_an + a;
                max_an = max_an < a ? a : max_an;
                sum_e = sum_e + ek;
                sum_o = sum_o + ok;
            }
            const double e2 = sum_e * sum_e + sum_o * sum_o;
            const double x_energy = std::sqrt(e2) + eps;
            double cross = std::fabs(e * sum_o - o * sum_e);
#pragma GCC unroll 16
            for (int k = 1; k < s; ++k)
                cross = cross + std::fabs(e0[(i64)k * npix + j] * sum_o - o0[(i64)k * npix + j] * sum_e);
            const double v = (e2 - cross) / x_energy - t;
            en[j] = v < 0.0 ? 0.0 : v;
            sa[j] = sum_an;
            z[j] = (sum_an / (max_an + eps) / s - cut_off) * g;
        }
        for (int j = 0; j < nb; ++j) z[j] = std::exp(-z[j]);
        double* ea = energy + p0;
        double* sac = sum_an_acc + p0;
        double* cx = covx2 + p0;
        double* cy = covy2 + p0;
        double* cxy = covxy + p0;
        for (int j = 0; j < nb; ++j) {
            const double weighted = 1.0 / (1.0 + z[j]) * en[j];
            sac[j] += sa[j];
            ea[j] += weighted;
            double pc = weighted / sa[j];
            pc = pc * pc;
            cx[j] += pc * cc;
            cy[j] += pc * ss;
            cxy[j] += pc * cs;
        }
    }
}

}  // namespace

extern "C" {

void uf_pc_orient(const double* eo, i64 npix, int s, double t, double eps, double cut_off, double g,
                  double cc, double ss, double cs, double* energy, double* sum_an_acc, double* covx2,
                  double* covy2, double* covxy) {
    if (s == 4)
        orient<4>(eo, npix, s, t, eps, cut_off, g, cc, ss, cs, energy, sum_an_acc, covx2, covy2, covxy);
    else
        orient<0>(eo, npix, s, t, eps, cut_off, g, cc, ss, cs, energy, sum_an_acc, covx2, covy2, covxy);
}

}  // extern "C"
