/**
 * @module masking/context
 * What masking needs from the config besides the rules: the key of the `hash` strategy.
 */
import { readSecret, type SecretSource } from '../config/secrets.ts';
import type { MaskContext } from './strategies.ts';

export function loadMaskContext(config: { readonly hashKey?: SecretSource | undefined }): MaskContext {
  return config.hashKey ? { hashKey: Buffer.from(readSecret(config.hashKey, 'masking.hashKey'), 'utf8') } : {};
}
