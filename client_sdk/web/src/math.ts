/**
 * Floating-point helpers that reproduce the Python SDK's numbers.
 *
 * The Python SDK computes its probabilities with the C library's `exp` and `log` (glibc),
 * which are correctly rounded in all but rare cases; V8's `Math.exp` and `Math.log` (fdlibm
 * ports) differ from them by one ulp for about 10% and 2% of arguments. {@link exp} and
 * {@link log} here are correctly rounded (evaluated in 256-bit fixed point with BigInt,
 * then rounded to the nearest double), so p, q and g agree with Python's bit for bit
 * except where glibc itself misrounds (measured: under 0.1% of arguments, by one ulp).
 * `log1p` stays `Math.log1p`: glibc's and V8's are both fdlibm's algorithm and agree.
 * A one-ulp difference in p changes the realised probability by about 1e-16 relative:
 * no effect on privacy; the discrete parameters (g, K, the "auto" choice) are checked
 * exactly by the shared test vectors.
 */

const FRACTION_BITS = 256;
const P = BigInt(FRACTION_BITS);
const ONE = 1n << P;

const view = new DataView(new ArrayBuffer(8));

/** A finite double as `mantissa * 2^exponent` (mantissa a non-negative integer < 2^53). */
export function decompose(x: number): { negative: boolean; mantissa: bigint; exponent: number } {
  view.setFloat64(0, x);
  const hi = view.getUint32(0);
  const lo = view.getUint32(4);
  const biased = (hi >>> 20) & 0x7ff;
  let mantissa = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  let exponent = -1074;
  if (biased !== 0) {
    mantissa |= 1n << 52n;
    exponent = biased - 1075;
  }
  return { negative: hi >>> 31 === 1, mantissa, exponent };
}

/** 2^e as a double (exact for -1074 <= e <= 1023). */
export function pow2(e: number): number {
  if (e > 1023) return pow2(1023) * pow2(e - 1023);
  if (e < -1022) return pow2(-1022) * pow2(e + 1022);
  view.setUint32(0, (e + 1023) << 20);
  view.setUint32(4, 0);
  return view.getFloat64(0);
}

/** Number of bits of a non-negative integer (Python's int.bit_length). */
export function bitLength(n: number): number {
  if (n < 0x100000000) return 32 - Math.clz32(n);
  return 32 + bitLength(Math.floor(n / 0x100000000));
}

function bigBitLength(n: bigint): number {
  return n === 0n ? 0 : n.toString(2).length;
}

/** The double nearest to v / 2^scale for a positive integer v (ties to even). */
function fixedToDouble(v: bigint, scale: number): number {
  const length = bigBitLength(v);
  if (length <= 53) return Number(v) * pow2(-scale);
  const shift = length - 53;
  let m = v >> BigInt(shift);
  const rest = v - (m << BigInt(shift));
  const half = 1n << BigInt(shift - 1);
  if (rest > half || (rest === half && (m & 1n) === 1n)) m += 1n;
  return Number(m) * pow2(shift - scale);
}

let ln2Cached: bigint | undefined;

/** ln 2 in fixed point: 2·atanh(1/3) = 2 Σ 3^-(2n+1)/(2n+1), with 32 guard bits. */
function ln2(): bigint {
  if (ln2Cached === undefined) {
    const guard = P + 32n;
    let power = (1n << guard) / 3n;
    let sum = 0n;
    for (let n = 0n; power > 0n; n++) {
      sum += power / (2n * n + 1n);
      power /= 9n;
    }
    ln2Cached = (2n * sum) >> 32n;
  }
  return ln2Cached;
}

/** Correctly rounded e^x for |x| <= 700 (outside: Math.exp). */
export function exp(x: number): number {
  if (!(Math.abs(x) <= 700)) return Math.exp(x);
  if (Math.abs(x) < 2 ** -60) return 1; // e^x rounds to 1 for |x| < 2^-54
  const { negative, mantissa, exponent } = decompose(x);
  const magnitude = mantissa << BigInt(exponent + FRACTION_BITS); // exact: exponent >= -112
  const X = negative ? -magnitude : magnitude;
  const L = ln2();
  // x = k ln2 + r with |r| <= ln2 / 2
  const k = X >= 0n ? (X + L / 2n) / L : -((-X + L / 2n) / L);
  const r = X - k * L;
  let sum = ONE;
  let term = ONE;
  for (let n = 1n; term !== 0n; n++) {
    term = ((term * r) >> P) / n;
    sum += term;
  }
  return fixedToDouble(sum, FRACTION_BITS - Number(k));
}

/** Correctly rounded natural logarithm of a positive finite double (else Math.log). */
export function log(y: number): number {
  if (!(y > 0) || !Number.isFinite(y)) return Math.log(y);
  if (y === 1) return 0;
  const { mantissa, exponent } = decompose(y);
  const length = bigBitLength(mantissa);
  // y = f · 2^n with f in [0.75, 1.5)
  let f = mantissa << BigInt(FRACTION_BITS - length);
  let n = exponent + length;
  if (f < (3n * ONE) / 4n) {
    f <<= 1n;
    n -= 1;
  }
  // log f = 2 atanh(z), z = (f - 1)/(f + 1), |z| <= 0.2
  const zNegative = f < ONE;
  const z = ((zNegative ? ONE - f : f - ONE) << P) / (f + ONE);
  const z2 = (z * z) >> P;
  let sum = 0n;
  let power = z;
  for (let j = 1n; power !== 0n; j += 2n) {
    sum += power / j;
    power = (power * z2) >> P;
  }
  const total = (zNegative ? -2n * sum : 2n * sum) + BigInt(n) * ln2();
  return total < 0n ? -fixedToDouble(-total, FRACTION_BITS) : fixedToDouble(total, FRACTION_BITS);
}

/** numpy's logaddexp(x, y) = log(e^x + e^y), evaluated by numpy's own branches. */
export function logaddexp(x: number, y: number): number {
  if (x === y) return x + Math.LN2;
  const t = x - y;
  if (t > 0) return x + Math.log1p(exp(-t));
  if (t <= 0) return y + Math.log1p(exp(t));
  return t; // NaN
}

/** Python's round(x) for a double: to the nearest integer, ties to even. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x); // ties toward +infinity
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}
