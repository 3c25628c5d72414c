// Per-pixel work of phase congruency (Kovesi's phasecong3 as revised by Z. Liu, the
// myphasecong3 behind MEFB's Qp), one orientation at a time, float64. Built on first use by
// unifuse/native.py and called through ctypes from unifuse/metrics/functional/phase_native.py.
//
// The filter responses come from the FFTs on the Python side: for each image and scale, the
// complex response (real = even, imaginary = odd; interleaved, pstride 2), or planar real
// planes (the even responses of scales 0..S-1, then the odd ones; pstride 1). Two passes per
// orientation:
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

namespace {

// Element (scale k, pixel p) of the responses: ev[k * sstride + p * P] (even), od[...] (odd);
// P = 1 for planar real planes, 2 for interleaved complex values (real = even, imag = odd).
template <int P>
double median_sq(const double* e, const double* o, i64 n, double* scratch) {
    if (n <= 0) return std::nan("");  // MATLAB: median of an empty array is NaN
    for (i64 i = 0; i < n; ++i) scratch[i] = std::sqrt(e[i * P] * e[i * P] + o[i * P] * o[i * P]);
    const i64 k = (n - 1) / 2;  // 0-based index of the lower middle value
    std::nth_element(scratch, scratch + k, scratch + n);
    const double lo = scratch[k];
    if (n % 2) return lo * lo;
    const double hi = *std::min_element(scratch + k + 1, scratch + n);
    return (lo * lo + hi * hi) / 2;
}

// One orientation of one image; running sums (npix each) updated in place: energy
// (sum_o W_o E_o), sum_an (sum_o sum_s A_so), covx2 / covy2 / covxy (PC_o^2 times cos^2,
// sin^2, cos sin of the orientation angle). Pixels go in blocks of B: two vectorisable
// passes around a scalar one for the exp. S > 0: that many scales (unrolled); S == 0: s.
template <int S, int P>
void orient(const double* ev, const double* od, i64 sstride, i64 npix, int s, double t, double eps, double cut_off,
            double g, double cc, double ss, double cs, double* energy, double* sum_an_acc, double* covx2,
            double* covy2, double* covxy) {
    if (S > 0) s = S;
    const int B = 256;
    double sa[B], en[B], z[B];
    for (i64 p0 = 0; p0 < npix; p0 += B) {
        const int nb = (int)std::min<i64>(B, npix - p0);
        const double* e0 = ev + p0 * P;
        const double* o0 = od + p0 * P;
        for (int j = 0; j < nb; ++j) {
            const double e = e0[j * P], o = o0[j * P];
            double sum_an = std::sqrt(e * e + o * o), max_an = sum_an, sum_e = e, sum_o = o;
#pragma GCC unroll 16
            for (int k = 1; k < s; ++k) {
                const double ek = e0[k * sstride + j * P], ok = o0[k * sstride + j * P];
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
                cross = cross + std::fabs(e0[k * sstride + j * P] * sum_o - o0[k * sstride + j * P] * sum_e);
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

int uf_pc_abi(void) { return 2; }

// median over n pixels of sqrt(e^2 + o^2)^2 (element i at e[i * pstride], pstride 1 or 2);
// scratch: n doubles. Returns the median (NaN for a pstride other than 1 or 2).
double uf_pc_median(const double* e, const double* o, i64 n, i64 pstride, double* scratch) {
    if (pstride == 1) return median_sq<1>(e, o, n, scratch);
    if (pstride == 2) return median_sq<2>(e, o, n, scratch);
    return std::nan("");
}

// One orientation of one image: even response of scale k at pixel p is ev[k * sstride +
// p * pstride], the odd one od[...] (pstride 1: planar planes; 2: interleaved complex values).
// Returns 0, or 1 for a pstride other than 1 or 2 (nothing written).
int uf_pc_orient(const double* ev, const double* od, i64 sstride, i64 pstride, i64 npix, int s, double t,
                 double eps, double cut_off, double g, double cc, double ss, double cs, double* energy,
                 double* sum_an_acc, double* covx2, double* covy2, double* covxy) {
#define UF_PC_ARGS ev, od, sstride, npix, s, t, eps, cut_off, g, cc, ss, cs, energy, sum_an_acc, covx2, covy2, covxy
    if (pstride == 1) {
        if (s == 4) orient<4, 1>(UF_PC_ARGS); else orient<0, 1>(UF_PC_ARGS);
    } else if (pstride == 2) {
        if (s == 4) orient<4, 2>(UF_PC_ARGS); else orient<0, 2>(UF_PC_ARGS);
    } else {
        return 1;
    }
#undef UF_PC_ARGS
    return 0;
}

}  // extern "C"
