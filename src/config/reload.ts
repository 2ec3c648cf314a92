/**
 * @module config/reload
 * Config hot reload: on SIGHUP, and when the config file changes, the file is loaded and checked exactly as at
 * start; a config that passes is handed to `apply`, one that does not is refused with the same file:line:col
 * messages `tollgate validate` prints, and the running config stays in force. A file event whose content is the
 * one in force is ignored; SIGHUP always reloads (it also re-reads the secrets the config names).
 */
import type { Config } from './schema.ts';
import { watchConfigFile, type FileWatcher } from './watch.ts';

export type ReloadTrigger = 'SIGHUP' | 'file';
export type ReloadResult = 'success' | 'failure' | 'unchanged';

export interface ReloadLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface ConfigReloaderOptions {
  readonly file: string;
  /** Loads and checks the file as at start; throws what `tollgate validate` would report. */
  readonly load: (file: string) => { config: Config; hash: string };
  /** Puts a checked config in force; throws when it cannot be built, leaving the running one. */
  readonly apply: (config: Config, hash: string) => void;
  /** Hash of the config in force. */
  readonly currentHash: () => string;
  readonly logger: ReloadLogger;
  readonly onResult?: (result: 'success' | 'failure', trigger: ReloadTrigger) => void;
  readonly debounceMs?: number;
}

export interface ConfigReloader {
  /** Reloads now; what the signal and the watcher call. */
  reload(trigger: ReloadTrigger): ReloadResult;
  close(): void;
}

export function startConfigReloader(options: ConfigReloaderOptions): ConfigReloader {
  const { file, logger } = options;
  const reload = (trigger: ReloadTrigger): ReloadResult => {
    let loaded: { config: Config; hash: string };
    try {
      loaded = options.load(file);
      if (trigger === 'file' && loaded.hash === options.currentHash()) return 'unchanged';
      options.apply(loaded.config, loaded.hash);
    } catch (err) {
      // The message of a ConfigError lists every problem as file:line:col: path: what was expected.
      logger.error({ file, trigger, err: (err as Error).message }, 'config reload refused; the running config stays in force');
      options.onResult?.('failure', trigger);
      return 'failure';
    }
    logger.info({ file, trigger, hash: loaded.hash, rules: loaded.config.rules.length }, 'config reloaded');
    options.onResult?.('success', trigger);
    return 'success';
  };
  const onSighup = () => { reload('SIGHUP'); };
  process.on('SIGHUP', onSighup);
  let watcher: FileWatcher | undefined = watchConfigFile(file, () => { reload('file'); }, {
    ...(options.debounceMs !== undefined && { debounceMs: options.debounceMs }),
    onError: (err) => {
      watcher = undefined;
      logger.warn({ file, err: err.message }, 'config file watch stopped; SIGHUP still reloads');
    },
  });
  return {
    reload,
    close: () => {
      process.off('SIGHUP', onSighup);
      watcher?.close();
    },
  };
}
