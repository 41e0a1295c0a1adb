#include <stdint.h>
#include <wasm_simd128.h>

/*
 * MD5 of four independent streams at once, one per 32-bit lane of a WebAssembly SIMD vector (the
 * "multi-buffer" technique of Intel's isa-l_crypto and minio's md5-simd). MD5 is a serial chain within one
 * stream, so one core hashes one stream at about 0.75 GB/s; four streams share each instruction, about
 * 2.3 GB/s. Built into md5x4-wasm.ts by build-wasm.sh (clang --target=wasm32 -msimd128); driven by lanes.ts,
 * which does the reading, the padding and the digests. No libc, no allocation: the memory never grows.
 *
 * The control block, written by the driver before each call: per lane, where its next block is and which
 * state it updates.
 */
uint32_t ctl_ptr[4];
uint32_t ctl_state[4];
/* Lane states, state[i] = {a, b, c, d}: LANES for the lanes, one more that idle lanes scribble on. */
uint32_t state[5][4];
/*
 * The 64 round constants, one vector each, filled by init(). Loaded from memory at each step: V8 builds a
 * vector constant written in the code from general registers every time it is used, which cost a sixth of the
 * speed (2.0 → 2.3 GB/s a core).
 */
v128_t KT[64];
static const uint32_t K[64] = {0xd76aa478,0xe8c7b756,0x242070db,0xc1bdceee,0xf57c0faf,0x4787c62a,0xa8304613,0xfd469501,0x698098d8,0x8b44f7af,0xffff5bb1,0x895cd7be,0x6b901122,0xfd987193,0xa679438e,0x49b40821,0xf61e2562,0xc040b340,0x265e5a51,0xe9b6c7aa,0xd62f105d,0x02441453,0xd8a1e681,0xe7d3fbc8,0x21e1cde6,0xc33707d6,0xf4d50d87,0x455a14ed,0xa9e3e905,0xfcefa3f8,0x676f02d9,0x8d2a4c8a,0xfffa3942,0x8771f681,0x6d9d6122,0xfde5380c,0xa4beea44,0x4bdecfa9,0xf6bb4b60,0xbebfbc70,0x289b7ec6,0xeaa127fa,0xd4ef3085,0x04881d05,0xd9d4d039,0xe6db99e5,0x1fa27cf8,0xc4ac5665,0xf4292244,0x432aff97,0xab9423a7,0xfc93a039,0x655b59c3,0x8f0ccc92,0xffeff47d,0x85845dd1,0x6fa87e4f,0xfe2ce6e0,0xa3014314,0x4e0811a1,0xf7537e82,0xbd3af235,0x2ad7d2bb,0xeb86d391};
/* Call once before md5x4. The volatile read keeps the compiler from folding the table back into constants. */
void init(void) {
  for (int i = 0; i < 64; i++) KT[i] = wasm_i32x4_splat(*(volatile const uint32_t *)&K[i]);
}

#define ROTL(x, s) wasm_v128_or(wasm_i32x4_shl((x), (s)), wasm_u32x4_shr((x), 32 - (s)))
#define FF(b, c, d) wasm_v128_bitselect((c), (d), (b))
#define GG(b, c, d) wasm_v128_bitselect((b), (c), (d))
#define HH(b, c, d) wasm_v128_xor(wasm_v128_xor((b), (c)), (d))
#define II(b, c, d) wasm_v128_xor((c), wasm_v128_or((b), wasm_v128_not(d)))
/* One MD5 step on four lanes: `kt` counts the steps of a block, so the round constant is KT[kt]. */
#define STEP(f, a, b, c, d, m, s) do { \
    v128_t t_ = wasm_i32x4_add(wasm_i32x4_add((a), f((b), (c), (d))), wasm_i32x4_add((m), KT[kt])); \
    kt++; \
    a = wasm_i32x4_add((b), ROTL(t_, s)); \
  } while (0)

static inline void transpose(const uint8_t *p0, const uint8_t *p1, const uint8_t *p2, const uint8_t *p3, v128_t *m) {
  for (int w = 0; w < 16; w += 4) {
    v128_t v0 = wasm_v128_load(p0 + 4 * w), v1 = wasm_v128_load(p1 + 4 * w), v2 = wasm_v128_load(p2 + 4 * w), v3 = wasm_v128_load(p3 + 4 * w);
    v128_t t0 = wasm_i32x4_shuffle(v0, v1, 0, 4, 1, 5), t1 = wasm_i32x4_shuffle(v0, v1, 2, 6, 3, 7);
    v128_t t2 = wasm_i32x4_shuffle(v2, v3, 0, 4, 1, 5), t3 = wasm_i32x4_shuffle(v2, v3, 2, 6, 3, 7);
    m[w] = wasm_i64x2_shuffle(t0, t2, 0, 2);
    m[w + 1] = wasm_i64x2_shuffle(t0, t2, 1, 3);
    m[w + 2] = wasm_i64x2_shuffle(t1, t3, 0, 2);
    m[w + 3] = wasm_i64x2_shuffle(t1, t3, 1, 3);
  }
}

#define ROUNDS(a, b, c, d, M) \
  STEP(FF, a, b, c, d, M[0], 7); STEP(FF, d, a, b, c, M[1], 12); STEP(FF, c, d, a, b, M[2], 17); STEP(FF, b, c, d, a, M[3], 22); \
  STEP(FF, a, b, c, d, M[4], 7); STEP(FF, d, a, b, c, M[5], 12); STEP(FF, c, d, a, b, M[6], 17); STEP(FF, b, c, d, a, M[7], 22); \
  STEP(FF, a, b, c, d, M[8], 7); STEP(FF, d, a, b, c, M[9], 12); STEP(FF, c, d, a, b, M[10], 17); STEP(FF, b, c, d, a, M[11], 22); \
  STEP(FF, a, b, c, d, M[12], 7); STEP(FF, d, a, b, c, M[13], 12); STEP(FF, c, d, a, b, M[14], 17); STEP(FF, b, c, d, a, M[15], 22); \
  STEP(GG, a, b, c, d, M[1], 5); STEP(GG, d, a, b, c, M[6], 9); STEP(GG, c, d, a, b, M[11], 14); STEP(GG, b, c, d, a, M[0], 20); \
  STEP(GG, a, b, c, d, M[5], 5); STEP(GG, d, a, b, c, M[10], 9); STEP(GG, c, d, a, b, M[15], 14); STEP(GG, b, c, d, a, M[4], 20); \
  STEP(GG, a, b, c, d, M[9], 5); STEP(GG, d, a, b, c, M[14], 9); STEP(GG, c, d, a, b, M[3], 14); STEP(GG, b, c, d, a, M[8], 20); \
  STEP(GG, a, b, c, d, M[13], 5); STEP(GG, d, a, b, c, M[2], 9); STEP(GG, c, d, a, b, M[7], 14); STEP(GG, b, c, d, a, M[12], 20); \
  STEP(HH, a, b, c, d, M[5], 4); STEP(HH, d, a, b, c, M[8], 11); STEP(HH, c, d, a, b, M[11], 16); STEP(HH, b, c, d, a, M[14], 23); \
  STEP(HH, a, b, c, d, M[1], 4); STEP(HH, d, a, b, c, M[4], 11); STEP(HH, c, d, a, b, M[7], 16); STEP(HH, b, c, d, a, M[10], 23); \
  STEP(HH, a, b, c, d, M[13], 4); STEP(HH, d, a, b, c, M[0], 11); STEP(HH, c, d, a, b, M[3], 16); STEP(HH, b, c, d, a, M[6], 23); \
  STEP(HH, a, b, c, d, M[9], 4); STEP(HH, d, a, b, c, M[12], 11); STEP(HH, c, d, a, b, M[15], 16); STEP(HH, b, c, d, a, M[2], 23); \
  STEP(II, a, b, c, d, M[0], 6); STEP(II, d, a, b, c, M[7], 10); STEP(II, c, d, a, b, M[14], 15); STEP(II, b, c, d, a, M[5], 21); \
  STEP(II, a, b, c, d, M[12], 6); STEP(II, d, a, b, c, M[3], 10); STEP(II, c, d, a, b, M[10], 15); STEP(II, b, c, d, a, M[1], 21); \
  STEP(II, a, b, c, d, M[8], 6); STEP(II, d, a, b, c, M[15], 10); STEP(II, c, d, a, b, M[6], 15); STEP(II, b, c, d, a, M[13], 21); \
  STEP(II, a, b, c, d, M[4], 6); STEP(II, d, a, b, c, M[11], 10); STEP(II, c, d, a, b, M[2], 15); STEP(II, b, c, d, a, M[9], 21);

#define LOAD(g, v, k) v = wasm_i32x4_make(state[ctl_state[4*g]][k], state[ctl_state[4*g+1]][k], state[ctl_state[4*g+2]][k], state[ctl_state[4*g+3]][k])
#define STORE(g, v, k) state[ctl_state[4*g]][k] = wasm_i32x4_extract_lane(v, 0); state[ctl_state[4*g+1]][k] = wasm_i32x4_extract_lane(v, 1); state[ctl_state[4*g+2]][k] = wasm_i32x4_extract_lane(v, 2); state[ctl_state[4*g+3]][k] = wasm_i32x4_extract_lane(v, 3)

/* n blocks of 64 bytes for the 4 lanes named by ctl_ptr[0..3] / ctl_state[0..3]. */
void md5x4(uint32_t n) {
  v128_t a, b, c, d, m[16];
  LOAD(0, a, 0); LOAD(0, b, 1); LOAD(0, c, 2); LOAD(0, d, 3);
  const uint8_t *p0 = (const uint8_t *)ctl_ptr[0], *p1 = (const uint8_t *)ctl_ptr[1], *p2 = (const uint8_t *)ctl_ptr[2], *p3 = (const uint8_t *)ctl_ptr[3];
  for (uint32_t i = 0; i < n; i++, p0 += 64, p1 += 64, p2 += 64, p3 += 64) {
    transpose(p0, p1, p2, p3, m);
    v128_t aa = a, bb = b, cc = c, dd = d;
    int kt = 0;
    ROUNDS(a, b, c, d, m)
    a = wasm_i32x4_add(a, aa); b = wasm_i32x4_add(b, bb); c = wasm_i32x4_add(c, cc); d = wasm_i32x4_add(d, dd);
  }
  STORE(0, a, 0); STORE(0, b, 1); STORE(0, c, 2); STORE(0, d, 3);
}

uint32_t *ctl_ptr_addr(void) { return ctl_ptr; }
uint32_t *ctl_state_addr(void) { return ctl_state; }
uint32_t *state_addr(void) { return &state[0][0]; }
