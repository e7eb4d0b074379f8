/**
 * A readers-writer lock for async code: many shared holders (reads, writes into clusters
 * that are already allocated) or one exclusive holder (anything that changes metadata).
 * Waiters are served in arrival order, so a stream of readers cannot starve a writer.
 */
interface Waiter {
  readonly exclusive: boolean;
  readonly wake: () => void;
}

export class RwLock {
  private shared = 0;
  private exclusive = false;
  private readonly queue: Waiter[] = [];

  async withShared<T>(fn: () => Promise<T>): Promise<T> {
    await this.acquire(false);
    try {
      return await fn();
    } finally {
      this.shared--;
      this.pump();
    }
  }

  async withExclusive<T>(fn: () => Promise<T>): Promise<T> {
    await this.acquire(true);
    try {
      return await fn();
    } finally {
      this.exclusive = false;
      this.pump();
    }
  }

  private acquire(exclusive: boolean): Promise<void> {
    if (this.queue.length === 0 && this.canGrant(exclusive)) {
      this.grant(exclusive);
      return Promise.resolve();
    }
    return new Promise((resolve) => this.queue.push({ exclusive, wake: resolve }));
  }

  private canGrant(exclusive: boolean): boolean {
    return exclusive ? !this.exclusive && this.shared === 0 : !this.exclusive;
  }

  private grant(exclusive: boolean): void {
    if (exclusive) this.exclusive = true;
    else this.shared++;
  }

  private pump(): void {
    for (;;) {
      const next = this.queue[0];
      if (next === undefined || !this.canGrant(next.exclusive)) return;
      this.queue.shift();
      this.grant(next.exclusive);
      next.wake();
    }
  }
}
