/**
 * @module config/watch
 * Tells when a config file may have changed. The directory is watched, not the file: editors save by writing a new
 * file and renaming it over the old one, and Kubernetes updates a mounted ConfigMap by swapping a `..data` symlink
 * beside it; a watch on the file itself would follow the old inode and miss both. Any event in the directory
 * counts (file names in events are not reliable across platforms); bursts are debounced into one call, and the
 * caller compares contents to ignore events that changed nothing.
 */
import { watch, type FSWatcher } from 'node:fs';
import path from 'node:path';

export interface FileWatcher {
  close(): void;
}

export interface WatchOptions {
  /** Quiet time after the last event before `onChange` runs; an editor's save is several events. Default 250 ms. */
  readonly debounceMs?: number;
  /** The watch itself failed (the directory went away); no further calls follow. */
  readonly onError?: (err: Error) => void;
}

export function watchConfigFile(file: string, onChange: () => void, options: WatchOptions = {}): FileWatcher {
  const debounceMs = options.debounceMs ?? 250;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  const watcher: FSWatcher = watch(path.dirname(path.resolve(file)), { persistent: false }, () => {
    if (closed) return;
    clearTimeout(timer);
    timer = setTimeout(() => { if (!closed) onChange(); }, debounceMs);
  });
  watcher.on('error', (err) => {
    closed = true;
    clearTimeout(timer);
    options.onError?.(err);
  });
  return {
    close: () => {
      closed = true;
      clearTimeout(timer);
      watcher.close();
    },
  };
}
