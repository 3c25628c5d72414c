// Fused window attention for small head dims (TITA: 64-token windows, d = 10), forward and
// backward, float32 and float64. Built on first use by unifuse/native.py with the machine's
// C++ compiler (-O3 -march=native) and called through ctypes; see
// unifuse/models/layers/attention_native.py for the Python side and the layouts.
//
// One "item" is one (image, window, head): its L x L logits live in registers, one row at a
// time, so the scores, the softmax and the product with V never travel through memory:
//   forward   s = bias + scale * q k^T (+ mask), p = softmax(s), o = p v
//   backward  dp = do v^T, ds = p * (dp - <p, dp>), dbias += ds,
//             dq = scale * ds k, dk = scale * ds^T q, dv = p^T do
// Rows are processed as NV vectors of W lanes (L = NV * W; L % 8 == 0, L <= 64, d <= 64).
// The exp of the float32 softmax is a Cephes-style polynomial (about 2 ulp; exact 0 below
// -87.3); the float64 one calls std::exp.
#include <cmath>
#include <cstdint>
#include <cstring>

typedef int64_t i64;

namespace {

template <typename T> struct VT;
template <> struct VT<float> {
    typedef float v __attribute__((vector_size(32)));
    static const int W = 8;
};
template <> struct VT<double> {
    typedef double v __attribute__((vector_size(32)));
    static const int W = 4;
};

const int MAXL = 64, MAXD = 64;
const int FWD_ROWS = 2;  // forward rows per step (1, 2 and 4 measured within noise)

template <typename V, typename T> inline V ld(const T* p) { V r; std::memcpy(&r, p, sizeof(V)); return r; }
template <typename V, typename T> inline void st(T* p, const V& x) { std::memcpy(p, &x, sizeof(V)); }
template <typename V, typename T> inline V bc(T x) { return V{} + x; }

template <typename T, typename V> inline T hsum(const V& x) {
    T s = x[0];
    for (int l = 1; l < (int)(sizeof(V) / sizeof(T)); ++l) s += x[l];
    return s;
}


typedef VT<float>::v v8f;
typedef int32_t v8i __attribute__((vector_size(32)));
typedef VT<double>::v v4d;
typedef int64_t v4l __attribute__((vector_size(32)));

// the maximum of the lanes, in every lane, by a shuffle tree (max is exact: any order gives the
// same value, and no scalar round trip)
inline v8f bmax(v8f x) {
    const v8i swap128 = {4, 5, 6, 7, 0, 1, 2, 3}, swap64 = {2, 3, 0, 1, 6, 7, 4, 5}, swap32 = {1, 0, 3, 2, 5, 4, 7, 6};
    v8f y = __builtin_shuffle(x, swap128);
    x = y > x ? y : x;
    y = __builtin_shuffle(x, swap64);
    x = y > x ? y : x;
    y = __builtin_shuffle(x, swap32);
    return y > x ? y : x;
}
inline v4d bmax(v4d x) {
    const v4l swap128 = {2, 3, 0, 1}, swap64 = {1, 0, 3, 2};
    v4d y = __builtin_shuffle(x, swap128);
    x = y > x ? y : x;
    y = __builtin_shuffle(x, swap64);
    return y > x ? y : x;
}

inline v8f vexp(v8f x) {
    const v8f lo = bc<v8f>(-87.33654f);
    v8i under = x < lo;
    x = under ? lo : x;
    v8f t = x * 1.44269504088896341f + 12582912.0f;  // round(x / ln 2) in the low mantissa bits
    v8f n = t - 12582912.0f;
    v8i ni = (v8i)t - 0x4B400000;
    v8f r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    v8f p = bc<v8f>(1.9875691500e-4f);
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    v8f y = p * (v8f)((ni + 127) << 23);
    return under ? bc<v8f>(0.0f) : y;
}

inline v4d vexp(v4d x) {
    v4d r;
    for (int l = 0; l < 4; ++l) r[l] = std::exp(x[l]);
    return r;
}

// Sums of 8 vectors at once: lane l of the result is the sum of a[l]'s lanes (a transpose-add
// tree: 21 vector operations instead of 8 horizontal sums).

inline v8f add_pairs(v8f a, v8f b, v8i lo, v8i hi) { return __builtin_shuffle(a, b, lo) + __builtin_shuffle(a, b, hi); }
inline v8f hsum8(const v8f* a) {
    const v8i l1 = {0, 8, 1, 9, 4, 12, 5, 13}, h1 = {2, 10, 3, 11, 6, 14, 7, 15};
    const v8i l2 = {0, 1, 8, 9, 4, 5, 12, 13}, h2 = {2, 3, 10, 11, 6, 7, 14, 15};
    const v8i l3 = {0, 1, 2, 3, 8, 9, 10, 11}, h3 = {4, 5, 6, 7, 12, 13, 14, 15};
    v8f b01 = add_pairs(a[0], a[1], l1, h1), b23 = add_pairs(a[2], a[3], l1, h1);
    v8f b45 = add_pairs(a[4], a[5], l1, h1), b67 = add_pairs(a[6], a[7], l1, h1);
    v8f c0 = add_pairs(b01, b23, l2, h2), c1 = add_pairs(b45, b67, l2, h2);
    return add_pairs(c0, c1, l3, h3);
}
inline v4d hsum8(const v4d* a) {  // float64: 4 vectors of 4 lanes
    const v4l l1 = {0, 4, 2, 6}, h1 = {1, 5, 3, 7}, l2 = {0, 1, 4, 5}, h2 = {2, 3, 6, 7};
    v4d b01 = __builtin_shuffle(a[0], a[1], l1) + __builtin_shuffle(a[0], a[1], h1);
    v4d b23 = __builtin_shuffle(a[2], a[3], l1) + __builtin_shuffle(a[2], a[3], h1);
    return __builtin_shuffle(b01, b23, l2) + __builtin_shuffle(b01, b23, h2);
}

// out[e] = scale * sum_c x[c] . rows[e][c], e < d: lane sums taken W at a time
template <typename T, int NV>
inline void dots(const typename VT<T>::v* x, const T* rows, int L, int d, T scale, T* out) {
    typedef typename VT<T>::v V;
    const int W = VT<T>::W;
    int e = 0;
    for (; e + W <= d; e += W) {
        V acc[W];
        for (int u = 0; u < W; ++u) {
            const T* r = rows + (e + u) * L;
            acc[u] = x[0] * ld<V>(r);
            for (int c = 1; c < NV; ++c) acc[u] += x[c] * ld<V>(r + c * W);
        }
        V s = hsum8(acc) * scale;
        for (int u = 0; u < W; ++u) out[e + u] = s[u];
    }
    for (; e < d; ++e) {
        const T* r = rows + e * L;
        V acc = x[0] * ld<V>(r);
        for (int c = 1; c < NV; ++c) acc += x[c] * ld<V>(r + c * W);
        out[e] = scale * hsum<T>(acc);
    }
}

// the scratch matrix after one of n elements, 64 bytes further than n rounded up to 64 bytes, so
// that rows of different matrices do not share an address modulo 4 KiB (store-to-load aliasing)
template <typename T> inline T* stagger(T* p, int n) { return p + (n + 15) / 16 * 16 + 16; }

// k (L x d, row stride kL) -> kt (d x L), columns e0..d-1 one element at a time
template <typename T> inline void transpose_in(const T* k, i64 kL, int L, int d, T* kt, int e0 = 0) {
    for (int j = 0; j < L; ++j) {
        const T* kj = k + j * kL;
        for (int e = e0; e < d; ++e) kt[e * L + j] = kj[e];
    }
}
// the reverse: kt (d x L) -> columns e0..d-1 of k (L x d, row stride kL)
template <typename T> inline void transpose_out(const T* kt, int L, int d, T* k, i64 kL, int e0 = 0) {
    for (int j = 0; j < L; ++j) {
        T* kj = k + j * kL;
        for (int e = e0; e < d; ++e) kj[e] = kt[e * L + j];
    }
}
// float32: 8 x 8 blocks transposed in registers (L % 8 == 0), then the last d % 8 columns by the
// loops above (the same copies, so the results are identical)
inline void transpose8(const float* src, i64 sL, float* dst, i64 dL) {  // dst[a][b] = src[b][a], a, b < 8
    const v8i lo = {0, 8, 1, 9, 4, 12, 5, 13}, hi = {2, 10, 3, 11, 6, 14, 7, 15};
    const v8i lo2 = {0, 1, 8, 9, 4, 5, 12, 13}, hi2 = {2, 3, 10, 11, 6, 7, 14, 15};
    const v8i lo4 = {0, 1, 2, 3, 8, 9, 10, 11}, hi4 = {4, 5, 6, 7, 12, 13, 14, 15};
    v8f r[8], t[8], u[8];
    for (int a = 0; a < 8; ++a) r[a] = ld<v8f>(src + a * sL);
    for (int a = 0; a < 8; a += 2) {
        t[a] = __builtin_shuffle(r[a], r[a + 1], lo);
        t[a + 1] = __builtin_shuffle(r[a], r[a + 1], hi);
    }
    for (int a = 0; a < 8; a += 4) {
        u[a] = __builtin_shuffle(t[a], t[a + 2], lo2);
        u[a + 1] = __builtin_shuffle(t[a], t[a + 2], hi2);
        u[a + 2] = __builtin_shuffle(t[a + 1], t[a + 3], lo2);
        u[a + 3] = __builtin_shuffle(t[a + 1], t[a + 3], hi2);
    }
    for (int a = 0; a < 4; ++a) {
        st(dst + a * dL, __builtin_shuffle(u[a], u[a + 4], lo4));
        st(dst + (a + 4) * dL, __builtin_shuffle(u[a], u[a + 4], hi4));
    }
}
inline void transpose_in(const float* k, i64 kL, int L, int d, float* kt) {
    int e0 = 0;
    for (; e0 + 8 <= d; e0 += 8)
        for (int j0 = 0; j0 < L; j0 += 8) transpose8(k + j0 * kL + e0, kL, kt + e0 * L + j0, L);
    transpose_in<float>(k, kL, L, d, kt, e0);
}
inline void transpose_out(const float* kt, int L, int d, float* k, i64 kL) {
    int e0 = 0;
    for (; e0 + 8 <= d; e0 += 8)
        for (int j0 = 0; j0 < L; j0 += 8) transpose8(kt + e0 * L + j0, L, k + j0 * kL + e0, kL);
    transpose_out<float>(kt, L, d, k, kL, e0);
}

// R rows of the forward at once (independent dependency chains side by side)
template <typename T, int NV, int R>
inline void fwd_rows(int i0, const T* q, i64 qL, const T* kt, const T* vt, const T* bias, const T* mask, T scale,
                     T* o, i64 oL, T* P, int d) {
    typedef typename VT<T>::v V;
    const int W = VT<T>::W, L = NV * W;
    const V sc = bc<V>(scale);
    V s[R][NV];
    for (int r = 0; r < R; ++r)
        for (int c = 0; c < NV; ++c) s[r][c] = bc<V>((T)0);
    for (int e = 0; e < d; ++e) {
        const T* kr = kt + e * L;
        for (int c = 0; c < NV; ++c) {
            const V kv = ld<V>(kr + c * W);
            for (int r = 0; r < R; ++r) s[r][c] += bc<V>(q[(i0 + r) * qL + e]) * kv;
        }
    }
    for (int r = 0; r < R; ++r) {
        const T* bi = bias + (i64)(i0 + r) * L;
        for (int c = 0; c < NV; ++c) s[r][c] = ld<V>(bi + c * W) + sc * s[r][c];
        if (mask) {
            const T* mi = mask + (i64)(i0 + r) * L;
            for (int c = 0; c < NV; ++c) s[r][c] += ld<V>(mi + c * W);
        }
    }
    V mv[R], sum[R];
    for (int r = 0; r < R; ++r) {
        V m = s[r][0];
        for (int c = 1; c < NV; ++c) m = s[r][c] > m ? s[r][c] : m;
        mv[r] = bmax(m);
        sum[r] = bc<V>((T)0);
    }
    for (int c = 0; c < NV; ++c)
        for (int r = 0; r < R; ++r) {
            s[r][c] = vexp(s[r][c] - mv[r]);
            sum[r] += s[r][c];
        }
    for (int r = 0; r < R; ++r) {
        const V inv = bc<V>((T)1 / hsum<T>(sum[r]));
        for (int c = 0; c < NV; ++c) s[r][c] *= inv;
        if (P) {
            T* pi = P + (i64)(i0 + r) * L;
            for (int c = 0; c < NV; ++c) st(pi + c * W, s[r][c]);
        }
    }
    for (int r = 0; r < R; ++r) dots<T, NV>(s[r], vt, L, d, (T)1, o + (i0 + r) * oL);
}

// DC: the head dim as a compile-time constant (0: the run-time d). TITA's d = 10 has its own
// instantiation, whose unrolled loops took 8-13 % less time (BENCHMARKS.md, session 14); the
// operations and their order are those of the generic code, so the results are identical.
template <typename T, int NV, int DC>
void fwd_item(const T* q, i64 qL, const T* k, i64 kL, const T* v, i64 vL, const T* bias, const T* mask,
              T scale, T* o, i64 oL, T* P, int d_) {
    const int d = DC ? DC : d_;
    const int L = NV * VT<T>::W;
    alignas(64) T buf[2 * MAXD * MAXL + 64];
    T *kt = buf, *vt = stagger(kt, d * L);
    transpose_in(k, kL, L, d, kt);
    transpose_in(v, vL, L, d, vt);
    for (int i = 0; i < L; i += FWD_ROWS) fwd_rows<T, NV, FWD_ROWS>(i, q, qL, kt, vt, bias, mask, scale, o, oL, P, d);
}

// rows[e] = scale * sum_i a[i * aL + e] * m[i], e < d: m is L x L (row stride L), a is L x d
template <typename T, int NV>
inline void left_product(const T* a, i64 aL, const T* m, int L, int d, T scale, T* rows) {
    typedef typename VT<T>::v V;
    const int W = VT<T>::W;
    for (int e = 0; e < d; ++e) {
        V acc[NV];
        for (int c = 0; c < NV; ++c) acc[c] = bc<V>((T)0);
        for (int i = 0; i < L; ++i) {
            const V x = bc<V>(a[i * aL + e]);
            const T* mi = m + (i64)i * L;
            for (int c = 0; c < NV; ++c) acc[c] += x * ld<V>(mi + c * W);
        }
        T* r = rows + e * L;
        for (int c = 0; c < NV; ++c) st(r + c * W, acc[c] * scale);
    }
}

template <typename T, int NV, int DC>  // DC: as for fwd_item
void bwd_item(const T* q, i64 qL, const T* k, i64 kL, const T* v, i64 vL, const T* P, const T* g, i64 gL,
              T scale, T* dq, i64 dqL, T* dk, i64 dkL, T* dv, i64 dvL, T* dbias, int d_) {
    const int d = DC ? DC : d_;
    typedef typename VT<T>::v V;
    const int W = VT<T>::W, L = NV * W;
    alignas(64) T buf[3 * MAXD * MAXL + MAXL * MAXL + 128];
    T *kt = buf, *vt = stagger(kt, d * L), *dS = stagger(vt, d * L), *rows = stagger(dS, L * L);
    transpose_in(k, kL, L, d, kt);
    transpose_in(v, vL, L, d, vt);
    for (int i = 0; i < L; ++i) {  // dS row by row, dbias, dq
        V p[NV], ds[NV];
        const T* pi = P + (i64)i * L;
        for (int c = 0; c < NV; ++c) {
            p[c] = ld<V>(pi + c * W);
            ds[c] = bc<V>((T)0);
        }
        const T* gi = g + i * gL;
        for (int e = 0; e < d; ++e) {  // dp = do_i v^T
            const V a = bc<V>(gi[e]);
            const T* vr = vt + e * L;
            for (int c = 0; c < NV; ++c) ds[c] += a * ld<V>(vr + c * W);
        }
        V t = p[0] * ds[0];
        for (int c = 1; c < NV; ++c) t += p[c] * ds[c];
        const V dot = bc<V>(hsum<T>(t));
        T* dsi = dS + (i64)i * L;
        for (int c = 0; c < NV; ++c) {
            ds[c] = p[c] * (ds[c] - dot);
            st(dsi + c * W, ds[c]);
        }
        if (dbias) {
            T* bi = dbias + (i64)i * L;
            for (int c = 0; c < NV; ++c) st(bi + c * W, ld<V>(bi + c * W) + ds[c]);
        }
        dots<T, NV>(ds, kt, L, d, scale, dq + i * dqL);
    }
    left_product<T, NV>(q, qL, dS, L, d, scale, rows);  // dk^T = scale q^T dS
    transpose_out(rows, L, d, dk, dkL);
    left_product<T, NV>(g, gL, P, L, d, (T)1, rows);  // dv^T = do^T P
    transpose_out(rows, L, d, dv, dvL);
}

// Strides are in elements: s[0..3] for (image, window, head, token); the last dim is contiguous.
// Items it in [start, end) are (b, w, h) = (it / (nW*H), it / H % nW, it % H).
#define ITEM_OFFSETS                                \
    const i64 b = it / ((i64)nW * H);               \
    const i64 w = (it / H) % nW;                    \
    const i64 h = it % H;                           \
    auto off = [&](const i64* s) { return b * s[0] + w * s[1] + h * s[2]; };

template <typename T, int NV>
void fwd_range(const T* q, const i64* qs, const T* k, const i64* ks, const T* v, const i64* vs, const T* bias,
               const T* mask, T scale, T* o, const i64* os, T* P, int nW, int H, int d, i64 start, i64 end) {
    const i64 LL = (i64)NV * VT<T>::W * NV * VT<T>::W;
    for (i64 it = start; it < end; ++it) {
        ITEM_OFFSETS
        (d == 10 ? fwd_item<T, NV, 10> : fwd_item<T, NV, 0>)(
            q + off(qs), qs[3], k + off(ks), ks[3], v + off(vs), vs[3], bias + h * LL, mask ? mask + w * LL : nullptr,
            scale, o + off(os), os[3], P ? P + it * LL : nullptr, d);
    }
}

template <typename T, int NV>
void bwd_range(const T* q, const i64* qs, const T* k, const i64* ks, const T* v, const i64* vs, const T* P,
               const T* g, const i64* gs, T scale, T* dq, const i64* dqs, T* dk, const i64* dks, T* dv,
               const i64* dvs, T* dbias, int nW, int H, int d, i64 start, i64 end) {
    const i64 LL = (i64)NV * VT<T>::W * NV * VT<T>::W;
    for (i64 it = start; it < end; ++it) {
        ITEM_OFFSETS
        (d == 10 ? bwd_item<T, NV, 10> : bwd_item<T, NV, 0>)(q + off(qs), qs[3], k + off(ks), ks[3], v + off(vs), vs[3], P + it * LL, g + off(gs), gs[3],
                        scale, dq + off(dqs), dqs[3], dk + off(dks), dks[3], dv + off(dvs), dvs[3],
                        dbias ? dbias + h * LL : nullptr, d);
    }
}

// L = 8 m tokens (m = 1..8): NV = 8 m / W vectors per row
#define UF_SWITCH_L(CALL)                                          \
    if (L % 8 || L > MAXL || d < 1 || d > MAXD) return 1;          \
    switch (L / 8) {                                               \
        case 1: CALL(1); case 2: CALL(2); case 3: CALL(3);         \
        case 4: CALL(4); case 5: CALL(5); case 6: CALL(6);         \
        case 7: CALL(7); case 8: CALL(8);                          \
        default: return 1;                                         \
    }

template <typename T>
int fwd_dispatch(const T* q, const i64* qs, const T* k, const i64* ks, const T* v, const i64* vs, const T* bias,
                 const T* mask, T scale, T* o, const i64* os, T* P, int L, int nW, int H, int d, i64 start,
                 i64 end) {
#define CALL(m)                                                                                          \
    fwd_range<T, 8 * m / VT<T>::W>(q, qs, k, ks, v, vs, bias, mask, scale, o, os, P, nW, H, d, start, end); \
    return 0
    UF_SWITCH_L(CALL)
#undef CALL
}

template <typename T>
int bwd_dispatch(const T* q, const i64* qs, const T* k, const i64* ks, const T* v, const i64* vs, const T* P,
                 const T* g, const i64* gs, T scale, T* dq, const i64* dqs, T* dk, const i64* dks, T* dv,
                 const i64* dvs, T* dbias, int L, int nW, int H, int d, i64 start, i64 end) {
#define CALL(m)                                                                                               \
    bwd_range<T, 8 * m / VT<T>::W>(q, qs, k, ks, v, vs, P, g, gs, scale, dq, dqs, dk, dks, dv, dvs, dbias, nW, H, \
                                   d, start, end);                                                            \
    return 0
    UF_SWITCH_L(CALL)
#undef CALL
}

}  // namespace

extern "C" {

int uf_wattn_abi(void) { return 1; }

int uf_wattn_fwd_f32(const float* q, const i64* qs, const float* k, const i64* ks, const float* v, const i64* vs,
                     const float* bias, const float* mask, double scale, float* o, const i64* os, float* P, int L,
                     int nW, int H, int d, i64 start, i64 end) {
    return fwd_dispatch<float>(q, qs, k, ks, v, vs, bias, mask, (float)scale, o, os, P, L, nW, H, d, start, end);
}
int uf_wattn_fwd_f64(const double* q, const i64* qs, const double* k, const i64* ks, const double* v,
                     const i64* vs, const double* bias, const double* mask, double scale, double* o, const i64* os,
                     double* P, int L, int nW, int H, int d, i64 start, i64 end) {
    return fwd_dispatch<double>(q, qs, k, ks, v, vs, bias, mask, scale, o, os, P, L, nW, H, d, start, end);
}
int uf_wattn_bwd_f32(const float* q, const i64* qs, const float* k, const i64* ks, const float* v, const i64* vs,
                     const float* P, const float* g, const i64* gs, double scale, float* dq, const i64* dqs,
                     float* dk, const i64* dks, float* dv, const i64* dvs, float* dbias, int L, int nW, int H, int d,
                     i64 start, i64 end) {
    return bwd_dispatch<float>(q, qs, k, ks, v, vs, P, g, gs, (float)scale, dq, dqs, dk, dks, dv, dvs, dbias, L, nW,
                               H, d, start, end);
}
int uf_wattn_bwd_f64(const double* q, const i64* qs, const double* k, const i64* ks, const double* v,
                     const i64* vs, const double* P, const double* g, const i64* gs, double scale, double* dq,
                     const i64* dqs, double* dk, const i64* dks, double* dv, const i64* dvs, double* dbias, int L,
                     int nW, int H, int d, i64 start, i64 end) {
    return bwd_dispatch<double>(q, qs, k, ks, v, vs, P, g, gs, scale, dq, dqs, dk, dks, dv, dvs, dbias, L, nW, H, d,
                                start, end);
}

}  // extern "C"
