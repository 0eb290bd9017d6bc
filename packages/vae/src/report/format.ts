// Number formatting shared by the charts (labels) and the HTML report (metric tables).

/**
 * A compact, readable rendering of a number: integers as is (thousands separated from 10 000), fractions with
 * four significant digits, very small or very large magnitudes in exponent notation.
 */
export function formatNumber(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (!Number.isFinite(x)) return x > 0 ? '∞' : '−∞';
  if (x === 0) return '0';
  const a = Math.abs(x);
  if (Number.isInteger(x))
    return a >= 1e15 ? x.toExponential(3) : a >= 1e4 ? x.toLocaleString('en-US') : String(x);
  if (a >= 1e9 || a < 1e-3) return trimExp(x.toExponential(2));
  if (a >= 1e4) return x.toLocaleString('en-US', { maximumFractionDigits: 1 });
  return String(Number(x.toPrecision(4)));
}

function trimExp(s: string): string {
  // 1.20e-4 -> 1.2e-4, 3.00e+9 -> 3e9
  return s.replace(/\.?0+e/, 'e').replace('e+', 'e');
}
