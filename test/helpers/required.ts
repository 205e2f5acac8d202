// The one rule for tests that need something from the machine (root, namespaces, coturn):
// skip with the reason where it is missing, but fail under TRAVERSE_REQUIRE_LAB=1, which CI
// sets, since there a skipped test would hide a broken install.
export function requiredByCi(): boolean {
  return process.env.TRAVERSE_REQUIRE_LAB === '1';
}

/** Skips the test with `reason`, or throws when CI requires the test to run. */
export function skipOrFail(t: { skip(msg: string): void }, reason: string): void {
  if (requiredByCi()) throw new Error(`required by TRAVERSE_REQUIRE_LAB=1 but unavailable: ${reason}`);
  t.skip(reason);
}
