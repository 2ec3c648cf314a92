/**
 * @module masking/detectors
 * Finds sensitive values inside free text: card numbers (Luhn-checked), emails, IBANs (mod-97-checked), phone
 * numbers, US social security numbers, and secrets (JWTs, cloud and SaaS API keys, private key blocks). Checksums
 * keep false positives down: a 16-digit order number that fails Luhn is not a card.
 *
 * Pure functions over strings; one shared engine for the Kafka and HTTP paths.
 */

export const DETECTOR_NAMES = ['card', 'email', 'iban', 'phone', 'us-ssn', 'jwt', 'secret'] as const;
export type DetectorName = (typeof DETECTOR_NAMES)[number];

export interface Finding {
  readonly detector: DetectorName;
  /** UTF-16 offsets into the scanned text, end exclusive. */
  readonly start: number;
  readonly end: number;
}

interface Detector {
  readonly name: DetectorName;
  /** Global regex of candidates; `valid` confirms a candidate (checksums). */
  readonly pattern: RegExp;
  readonly valid?: (match: string) => boolean;
}

/** Luhn (ISO/IEC 7812) over the digits of `text`, ignoring spaces and dashes. */
export function luhnValid(text: string): boolean {
  const digits = text.replace(/[ -]/g, '');
  if (!/^\d{13,19}$/.test(digits)) return false;
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

/** ISO 13616 mod-97 check of an IBAN written with or without spaces. */
export function ibanValid(text: string): boolean {
  const iban = text.replace(/ /g, '').toUpperCase();
  if (!/^[A-Z]{2}\d{2}[A-Z0-9]{11,30}$/.test(iban)) return false;
  const rearranged = iban.slice(4) + iban.slice(0, 4);
  let remainder = 0;
  for (const ch of rearranged) {
    const value = ch >= 'A' ? String(ch.charCodeAt(0) - 55) : ch;
    for (const digit of value) remainder = (remainder * 10 + (digit.charCodeAt(0) - 48)) % 97;
  }
  return remainder === 1;
}

const DETECTORS: Readonly<Record<DetectorName, Detector>> = {
  card: { name: 'card', pattern: /(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])/g, valid: luhnValid },
  email: { name: 'email', pattern: /[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/g },
  iban: { name: 'iban', pattern: /\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b/g, valid: ibanValid },
  // International form only: bare digit runs are too often ids and amounts.
  phone: { name: 'phone', pattern: /\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){2,5}\d/g, valid: (m) => m.replace(/\D/g, '').length >= 8 },
  'us-ssn': { name: 'us-ssn', pattern: /\b(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}\b/g },
  jwt: { name: 'jwt', pattern: /\beyJ[A-Za-z0-9_-]{2,}\.eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]{10,}/g },
  secret: {
    name: 'secret',
    pattern: /\b(?:AKIA[0-9A-Z]{16}|ASIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,}|xox[abprs]-[A-Za-z0-9-]{10,}|sk_(?:live|test)_[A-Za-z0-9]{16,}|AIza[0-9A-Za-z_-]{35})\b|-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/g,
  },
};

/**
 * Every finding of the given detectors in `text`, sorted by start; overlapping findings are merged into the
 * earliest-starting one (a JWT that happens to contain an email-like run is masked once, as a JWT).
 */
export function detect(text: string, detectors: readonly DetectorName[]): Finding[] {
  const found: Finding[] = [];
  for (const name of detectors) {
    const d = DETECTORS[name];
    d.pattern.lastIndex = 0;
    for (let m = d.pattern.exec(text); m !== null; m = d.pattern.exec(text)) {
      if (d.valid === undefined || d.valid(m[0])) found.push({ detector: name, start: m.index, end: m.index + m[0].length });
    }
  }
  found.sort((a, b) => a.start - b.start || b.end - a.end);
  const merged: Finding[] = [];
  for (const f of found) {
    const last = merged[merged.length - 1];
    if (last !== undefined && f.start < last.end) continue;
    merged.push(f);
  }
  return merged;
}
