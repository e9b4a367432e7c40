/**
 * The styling a merchant may pass to the hosted fields: a short allow-list of properties, each with a
 * value pattern that admits no url(), expression, escape or other way to load or run anything. Values
 * are applied through the CSSOM (element.style.setProperty), which the page's CSP permits without
 * 'unsafe-inline'.
 */
export interface MerchantStyle {
  color?: string;
  backgroundColor?: string;
  borderColor?: string;
  borderRadius?: string;
  focusColor?: string;
  errorColor?: string;
  fontFamily?: string;
  fontSize?: string;
  padding?: string;
}

const COLOR = /^(?:#[0-9a-fA-F]{3,8}|(?:rgb|rgba|hsl|hsla)\([0-9.,%\s/]{1,40}\)|[a-zA-Z]{3,20})$/;
const LENGTH =
  /^(?:0|\d{1,3}(?:\.\d{1,2})?(?:px|rem|em|%))(?:\s+(?:0|\d{1,3}(?:\.\d{1,2})?(?:px|rem|em|%))){0,3}$/;
/** Installed fonts only (no web fonts: they would be a request to a third party). */
const FONT_FAMILY = /^[a-zA-Z0-9 ,'-]{1,100}$/;

/** Each allowed key, the custom property it sets on the page and the pattern its value must match. */
export const styleRules: Readonly<Record<keyof MerchantStyle, { property: string; pattern: RegExp }>> = {
  color: { property: '--ch-color', pattern: COLOR },
  backgroundColor: { property: '--ch-background', pattern: COLOR },
  borderColor: { property: '--ch-border', pattern: COLOR },
  borderRadius: { property: '--ch-radius', pattern: LENGTH },
  focusColor: { property: '--ch-focus', pattern: COLOR },
  errorColor: { property: '--ch-error', pattern: COLOR },
  fontFamily: { property: '--ch-font', pattern: FONT_FAMILY },
  fontSize: { property: '--ch-font-size', pattern: LENGTH },
  padding: { property: '--ch-padding', pattern: LENGTH },
};

/** The custom properties to set for a merchant's style; unknown keys and bad values are dropped. */
export function styleProperties(style: unknown): Array<[property: string, value: string]> {
  if (typeof style !== 'object' || style === null) return [];
  const out: Array<[string, string]> = [];
  for (const [key, value] of Object.entries(style)) {
    const rule = Object.hasOwn(styleRules, key) ? styleRules[key as keyof MerchantStyle] : undefined;
    if (rule && typeof value === 'string' && rule.pattern.test(value.trim()))
      out.push([rule.property, value.trim()]);
  }
  return out;
}
