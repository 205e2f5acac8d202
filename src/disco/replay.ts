// Anti-replay for sealed disco packets: a sliding window over each sender's 64-bit message
// counter (as in IPsec and WireGuard). A counter seen before, or older than the window, is a
// replay or too late to matter; both are dropped.
export const REPLAY_WINDOW = 1024;

export class ReplayWindow {
  private highest = -1n;
  private readonly seen = new Uint8Array(REPLAY_WINDOW / 8);

  /** Records `counter` and returns true if it is new; false if it must be dropped. */
  accept(counter: bigint): boolean {
    if (counter > this.highest) {
      const shift = this.highest < 0n ? BigInt(REPLAY_WINDOW) : counter - this.highest;
      if (shift >= BigInt(REPLAY_WINDOW)) this.seen.fill(0);
      else for (let c = this.highest + 1n; c <= counter; c++) this.clear(c);
      this.highest = counter;
      this.set(counter);
      return true;
    }
    if (this.highest - counter >= BigInt(REPLAY_WINDOW)) return false;
    if (this.isSet(counter)) return false;
    this.set(counter);
    return true;
  }

  private bit(c: bigint): [number, number] {
    const i = Number(c % BigInt(REPLAY_WINDOW));
    return [i >> 3, 1 << (i & 7)];
  }
  private set(c: bigint): void {
    const [byte, mask] = this.bit(c);
    this.seen[byte]! |= mask;
  }
  private clear(c: bigint): void {
    const [byte, mask] = this.bit(c);
    this.seen[byte]! &= ~mask;
  }
  private isSet(c: bigint): boolean {
    const [byte, mask] = this.bit(c);
    return (this.seen[byte]! & mask) !== 0;
  }
}
