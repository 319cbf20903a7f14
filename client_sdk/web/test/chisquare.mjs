// Pearson's chi-square goodness-of-fit test with an exact-enough p-value (regularised upper
// incomplete gamma function, Numerical Recipes §6.2), for the distribution tests.

const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
  12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];

export function logGamma(x) {
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  x -= 1;
  let a = LANCZOS[0];
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += LANCZOS[i] / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Q(a, x) = Γ(a, x)/Γ(a), the upper tail of a Gamma(a) variable. */
export function gammaQ(a, x) {
  if (x <= 0) return 1;
  const lead = -x + a * Math.log(x) - logGamma(a);
  if (x < a + 1) {
    // series for P(a, x)
    let sum = 1 / a;
    let term = sum;
    for (let n = 1; n < 100000; n++) {
      term *= x / (a + n);
      sum += term;
      if (Math.abs(term) < Math.abs(sum) * 1e-16) break;
    }
    return Math.max(0, 1 - sum * Math.exp(lead));
  }
  // Lentz's continued fraction for Q(a, x)
  const tiny = 1e-300;
  let b = x + 1 - a;
  let c = 1 / tiny;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 100000; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    h *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return Math.exp(lead) * h;
}

/**
 * Chi-square test of observed counts against exact cell probabilities (which must sum to 1).
 * Returns {statistic, df, pValue, minExpected}.
 */
export function chiSquare(observed, probabilities) {
  const n = observed.reduce((s, x) => s + x, 0);
  let statistic = 0;
  let minExpected = Infinity;
  let total = 0;
  for (let i = 0; i < observed.length; i++) {
    const expected = n * probabilities[i];
    total += probabilities[i];
    minExpected = Math.min(minExpected, expected);
    statistic += (observed[i] - expected) ** 2 / expected;
  }
  if (Math.abs(total - 1) > 1e-9) throw new Error(`cell probabilities sum to ${total}`);
  const df = observed.length - 1;
  return { statistic, df, pValue: gammaQ(df / 2, statistic / 2), minExpected };
}
