/**
 * Python's text forms of values, for error messages only: the web SDK's ConfigError and
 * ReportDecodeError messages read as the Python SDK's do (tests/vectors/config.json compares
 * them). Nothing here is ever hashed or sent: canonical JSON is RFC 8785 (canonical.ts).
 */

/**
 * `repr(x)` of a Python float: the shortest digits that round-trip (what
 * `Number.prototype.toString` also produces), laid out by Python's rules: exponent form
 * when the decimal exponent is below -4 or at least 16 (`1e-05`, `1e+16`), otherwise
 * fixed form with at least one digit after the point (`1.0`, `0.0001`).
 */
export function pyFloatRepr(x: number): string {
  if (!Number.isFinite(x)) {
    throw new RangeError(`Out of range float values are not JSON compliant: ${x}`);
  }
  if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
  const sign = x < 0 ? "-" : "";
  const text = String(Math.abs(x));
  const e = text.indexOf("e");
  const mantissa = e >= 0 ? text.slice(0, e) : text;
  const exp10 = e >= 0 ? parseInt(text.slice(e + 1), 10) : 0;
  const dot = mantissa.indexOf(".");
  const intPart = dot >= 0 ? mantissa.slice(0, dot) : mantissa;
  const fracPart = dot >= 0 ? mantissa.slice(dot + 1) : "";
  let digits = intPart + fracPart;
  // value = 0.<digits> * 10^decpt
  let decpt = intPart.length + exp10;
  const lead = digits.length - digits.replace(/^0+/, "").length;
  digits = digits.slice(lead).replace(/0+$/, "");
  decpt -= lead;
  if (decpt <= -4 || decpt > 16) {
    const exponent = decpt - 1;
    const abs = Math.abs(exponent);
    const head = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    return `${sign}${head}e${exponent < 0 ? "-" : "+"}${abs < 10 ? "0" : ""}${abs}`;
  }
  if (decpt <= 0) return `${sign}0.${"0".repeat(-decpt)}${digits}`;
  if (decpt >= digits.length) return `${sign}${digits}${"0".repeat(decpt - digits.length)}.0`;
  return `${sign}${digits.slice(0, decpt)}.${digits.slice(decpt)}`;
}

/** `repr(s)` of a Python str (single quotes unless the text holds one and no double quote). */
export function pyStrRepr(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    const c = ch.codePointAt(0) as number;
    if (ch === quote || ch === "\\") out += `\\${ch}`;
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (c < 0x20 || c === 0x7f) out += `\\x${c.toString(16).padStart(2, "0")}`;
    else out += ch;
  }
  return out + quote;
}

/**
 * An approximation of Python's `repr` for values that came from JSON, for messages only.
 * Integral numbers print as ints (JSON cannot tell `3.0` from `3` once parsed).
 */
export function pyRepr(value: unknown): string {
  if (value === null || value === undefined) return "None";
  if (value === true) return "True";
  if (value === false) return "False";
  if (typeof value === "number") {
    if (Number.isInteger(value) && Math.abs(value) < 1e21) return BigInt(value).toString();
    return Number.isFinite(value) ? pyFloatRepr(value) : value > 0 ? "inf" : value < 0 ? "-inf" : "nan";
  }
  if (typeof value === "bigint") return value.toString();
  if (typeof value === "string") return pyStrRepr(value);
  if (Array.isArray(value)) return `[${value.map(pyRepr).join(", ")}]`;
  if (typeof value === "object") {
    const items = Object.entries(value as Record<string, unknown>).map(([k, v]) => `${pyStrRepr(k)}: ${pyRepr(v)}`);
    return `{${items.join(", ")}}`;
  }
  return String(value);
}
