// Clean shutdown on SIGINT/SIGTERM: run the closers once, then exit 0.
export function onShutdown(close: () => Promise<void> | void, exitCode = 0): void {
  let closing = false;
  const handler = (): void => {
    if (closing) process.exit(exitCode); // a second signal: stop waiting
    closing = true;
    // A close that hangs must not keep the process alive past a second.
    const timer = setTimeout(() => process.exit(exitCode), 1000);
    timer.unref();
    Promise.resolve()
      .then(close)
      .catch(() => undefined)
      .finally(() => process.exit(exitCode));
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
}
