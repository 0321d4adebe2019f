/* Elementwise hot spots of inr.fused's float32 CPU step, on glibc's vector sine and cosine (libmvec).

   Compiled by inr/native.py with -DVW=16 (AVX-512: _ZGVeN16v_sinf) or -DVW=8 (AVX2: _ZGVdN8v_sinf); no
   -ffast-math. Every operand is a float32 array [B, R, P] given as (pointer, stride of B, stride of R), in elements,
   with its last dimension contiguous; a stride of 0 broadcasts. Outputs may alias inputs element for element (each
   block of VW is loaded before it is stored). */
#include <immintrin.h>
#include <string.h>

#if VW == 16
typedef __m512 vf;
vf _ZGVeN16v_sinf(vf);
vf _ZGVeN16v_cosf(vf);
#define VSIN _ZGVeN16v_sinf
#define VCOS _ZGVeN16v_cosf
#define VLOAD _mm512_loadu_ps
#define VSTORE _mm512_storeu_ps
#define VMUL _mm512_mul_ps
#define VFMA _mm512_fmadd_ps
#define VSET1 _mm512_set1_ps
#elif VW == 8
typedef __m256 vf;
vf _ZGVdN8v_sinf(vf);
vf _ZGVdN8v_cosf(vf);
#define VSIN _ZGVdN8v_sinf
#define VCOS _ZGVdN8v_cosf
#define VLOAD _mm256_loadu_ps
#define VSTORE _mm256_storeu_ps
#define VMUL _mm256_mul_ps
#define VFMA _mm256_fmadd_ps
#define VSET1 _mm256_set1_ps
#else
#error "VW must be 16 or 8"
#endif

#define ARG(name) float *name, long name##_b, long name##_r
#define ROW(name) (name + b * name##_b + r * name##_r)

/* One block of VW elements of each op. */
static inline void sin_block(const float *x, float *y) { VSTORE(y, VSIN(VLOAD(x))); }

static inline void cos_mul_block(const float *x, const float *d, float *y) {
    VSTORE(y, VMUL(VCOS(VLOAD(x)), VLOAD(d)));
}

static inline void sin_mul_block(const float *x, const float *u, float *g, float *z) {
    vf uv = VLOAD(u), s = VSIN(VLOAD(x));
    VSTORE(z, VMUL(uv, s));
    VSTORE(g, s);
}

static inline void mfn_back_block(const float *a, const float *g, const float *u, const float *dz, float *du,
                                  float *da) {
    vf d = VLOAD(dz), gv = VLOAD(g), uv = VLOAD(u);
    vf c = VCOS(VLOAD(a));
    VSTORE(da, VMUL(c, VMUL(uv, d)));
    VSTORE(du, VMUL(gv, d));
}

/* A first layer on the coordinates c [3, P] that all INRs share (rows x, y, ones): a = w0 x + w1 y + w2 per row,
   computed where it is used instead of stored. */
static inline vf affine(const float *w, const float *cx, const float *cy) {
    return VFMA(VSET1(w[0]), VLOAD(cx), VFMA(VSET1(w[1]), VLOAD(cy), VSET1(w[2])));
}

static inline void sin_affine_block(const float *w, const float *cx, const float *cy, float *y) {
    VSTORE(y, VSIN(affine(w, cx, cy)));
}

static inline void cos_affine_mul_block(const float *w, const float *cx, const float *cy, const float *d, float *y) {
    VSTORE(y, VMUL(VCOS(affine(w, cx, cy)), VLOAD(d)));
}

/* The last P % VW elements of a row go through zero-padded copies. */
#define TAIL_IN(name, p) float name##_t[VW] = {0}; memcpy(name##_t, p, rest * sizeof(float))
#define TAIL_OUT(name, p) float name##_t[VW]
#define TAIL_STORE(name, p) memcpy(p, name##_t, rest * sizeof(float))

/* y = sin(x) */
void cinr_sin(long B, long R, long P, ARG(x), ARG(y)) {
    long full = P - P % VW, rest = P % VW;
    for (long b = 0; b < B; b++)
        for (long r = 0; r < R; r++) {
            const float *xr = ROW(x); float *yr = ROW(y);
            for (long i = 0; i < full; i += VW) sin_block(xr + i, yr + i);
            if (rest) {
                TAIL_IN(x, xr + full); TAIL_OUT(y, yr + full);
                sin_block(x_t, y_t);
                TAIL_STORE(y, yr + full);
            }
        }
}

/* y = cos(x) * d */
void cinr_cos_mul(long B, long R, long P, ARG(x), ARG(d), ARG(y)) {
    long full = P - P % VW, rest = P % VW;
    for (long b = 0; b < B; b++)
        for (long r = 0; r < R; r++) {
            const float *xr = ROW(x), *dr = ROW(d); float *yr = ROW(y);
            for (long i = 0; i < full; i += VW) cos_mul_block(xr + i, dr + i, yr + i);
            if (rest) {
                TAIL_IN(x, xr + full); TAIL_IN(d, dr + full); TAIL_OUT(y, yr + full);
                cos_mul_block(x_t, d_t, y_t);
                TAIL_STORE(y, yr + full);
            }
        }
}

/* g = sin(x), z = u * g (an MFN's filter and its product with the previous layer) */
void cinr_sin_mul(long B, long R, long P, ARG(x), ARG(u), ARG(g), ARG(z)) {
    long full = P - P % VW, rest = P % VW;
    for (long b = 0; b < B; b++)
        for (long r = 0; r < R; r++) {
            const float *xr = ROW(x), *ur = ROW(u); float *gr = ROW(g), *zr = ROW(z);
            for (long i = 0; i < full; i += VW) sin_mul_block(xr + i, ur + i, gr + i, zr + i);
            if (rest) {
                TAIL_IN(x, xr + full); TAIL_IN(u, ur + full); TAIL_OUT(g, gr + full); TAIL_OUT(z, zr + full);
                sin_mul_block(x_t, u_t, g_t, z_t);
                TAIL_STORE(g, gr + full); TAIL_STORE(z, zr + full);
            }
        }
}

/* du = g * dz, da = cos(a) * u * dz (the backward of z = u * sin(a)) */
void cinr_mfn_back(long B, long R, long P, ARG(a), ARG(g), ARG(u), ARG(dz), ARG(du), ARG(da)) {
    long full = P - P % VW, rest = P % VW;
    for (long b = 0; b < B; b++)
        for (long r = 0; r < R; r++) {
            const float *ar = ROW(a), *gr = ROW(g), *ur = ROW(u), *dzr = ROW(dz);
            float *dur = ROW(du), *dar = ROW(da);
            for (long i = 0; i < full; i += VW) mfn_back_block(ar + i, gr + i, ur + i, dzr + i, dur + i, dar + i);
            if (rest) {
                TAIL_IN(a, ar + full); TAIL_IN(g, gr + full); TAIL_IN(u, ur + full); TAIL_IN(dz, dzr + full);
                TAIL_OUT(du, dur + full); TAIL_OUT(da, dar + full);
                mfn_back_block(a_t, g_t, u_t, dz_t, du_t, da_t);
                TAIL_STORE(du, dur + full); TAIL_STORE(da, dar + full);
            }
        }
}

/* y = sin(a), a = w[b, r, 0] c[0] + w[b, r, 1] c[1] + w[b, r, 2]: w [B, R, 3] (rows contiguous), c [3, P] contiguous */
void cinr_sin_affine(long B, long R, long P, ARG(w), const float *c, ARG(y)) {
    long full = P - P % VW, rest = P % VW;
    const float *cx = c, *cy = c + P;
    for (long b = 0; b < B; b++)
        for (long r = 0; r < R; r++) {
            const float *wr = ROW(w); float *yr = ROW(y);
            for (long i = 0; i < full; i += VW) sin_affine_block(wr, cx + i, cy + i, yr + i);
            if (rest) {
                TAIL_IN(cx, cx + full); TAIL_IN(cy, cy + full); TAIL_OUT(y, yr + full);
                sin_affine_block(wr, cx_t, cy_t, y_t);
                TAIL_STORE(y, yr + full);
            }
        }
}

/* y = cos(a) * d with a as in cinr_sin_affine (its backward) */
void cinr_cos_affine_mul(long B, long R, long P, ARG(w), const float *c, ARG(d), ARG(y)) {
    long full = P - P % VW, rest = P % VW;
    const float *cx = c, *cy = c + P;
    for (long b = 0; b < B; b++)
        for (long r = 0; r < R; r++) {
            const float *wr = ROW(w), *dr = ROW(d); float *yr = ROW(y);
            for (long i = 0; i < full; i += VW) cos_affine_mul_block(wr, cx + i, cy + i, dr + i, yr + i);
            if (rest) {
                TAIL_IN(cx, cx + full); TAIL_IN(cy, cy + full); TAIL_IN(d, dr + full); TAIL_OUT(y, yr + full);
                cos_affine_mul_block(wr, cx_t, cy_t, d_t, y_t);
                TAIL_STORE(y, yr + full);
            }
        }
}
