/**
 * UDP (RFC 768) and the datagram sockets of the guest stack.
 *
 *    0      7 8     15 16    23 24    31
 *   |     Source      |   Destination   |
 *   |      Port       |      Port       |
 *   |     Length      |    Checksum     |
 *
 * "Checksum is the 16-bit one's complement of the one's complement sum of a pseudo header
 * of information from the IP header, the UDP header, and the data ... If the computed
 * checksum is zero, it is transmitted as all ones ... An all zero transmitted checksum
 * value means that the transmitter generated no checksum." So: always computed on send,
 * verified on receive when non-zero.
 */
import { BoundedQueue, XenpvError } from '../../base/index.js';
import type { Ipv4 } from './addr.js';

export const UDP_HLEN = 8;

export interface UdpDatagram {
  readonly srcIp: Ipv4;
  readonly srcPort: number;
  readonly dstIp: Ipv4;
  readonly dstPort: number;
  readonly payload: Uint8Array;
}

export type SendResult = 'sent' | 'queued' | 'dropped' | 'no-route';

export interface UdpSocketOptions {
  readonly queueDatagrams?: number;
  readonly queueBytes?: number;
  /**
   * Each datagram handed to this function as it arrives, instead of queued (`recv` then
   * returns nothing): for a reader that consumes each at once. The payload is
   * `frame[start, end)`, where `frame` may be the driver's reused buffer, valid only during the
   * call: copy what you keep. A span, not a view: a reader of frames read in place (each in a
   * different rx page) would otherwise get a new view per datagram, which cost the receiver of
   * a 1472-byte stream ~15 % of its CPU per packet (bench net, 27 November).
   */
  readonly onDatagram?: DatagramReader;
}

/** UdpSocketOptions.onDatagram: the payload is `frame[start, end)`, valid during the call. */
export type DatagramReader = (frame: Uint8Array, start: number, end: number, srcIp: Ipv4, srcPort: number) => void;

export const DEFAULT_UDP_QUEUE_DATAGRAMS = 1024;
export const DEFAULT_UDP_QUEUE_BYTES = 2 * 1024 * 1024;

/** What a socket needs from its stack. */
export interface UdpHost {
  udpSend(srcPort: number, dst: Ipv4 | string, dstPort: number, payload: Uint8Array): SendResult;
  udpUnbind(port: number): void;
}

/**
 * A bound UDP port. Received datagrams wait in a bounded queue (items and bytes); when it
 * is full new ones are dropped and counted (Linux's RcvbufErrors).
 */
export class UdpSocket {
  private readonly queue: BoundedQueue<UdpDatagram>;
  private readonly queueBytesMax: number;
  private queuedBytes = 0;
  private open = true;
  /** Datagrams lost because the receive queue was full. */
  drops = 0;
  /** Called after a datagram is queued. */
  onReadable: (() => void) | undefined;
  /** UdpSocketOptions.onDatagram. */
  readonly onDatagram: DatagramReader | undefined;

  constructor(private readonly host: UdpHost, readonly port: number, opts: UdpSocketOptions = {}) {
    this.queue = new BoundedQueue(opts.queueDatagrams ?? DEFAULT_UDP_QUEUE_DATAGRAMS);
    this.queueBytesMax = opts.queueBytes ?? DEFAULT_UDP_QUEUE_BYTES;
    this.onDatagram = opts.onDatagram;
  }

  get isOpen(): boolean {
    return this.open;
  }

  get queued(): number {
    return this.queue.length;
  }

  send(dst: Ipv4 | string, dstPort: number, payload: Uint8Array): SendResult {
    if (!this.open) throw new XenpvError('EBADF', `UDP socket ${this.port} is closed`, { port: this.port });
    return this.host.udpSend(this.port, dst, dstPort, payload);
  }

  recv(): UdpDatagram | undefined {
    const d = this.queue.shift();
    if (d !== undefined) this.queuedBytes -= d.payload.length;
    return d;
  }

  /** Stack-internal: a datagram arrived for this port (its payload its own). False if it was dropped. */
  push(d: UdpDatagram): boolean {
    if (this.queue.full || this.queuedBytes + d.payload.length > this.queueBytesMax) {
      this.drops++;
      return false;
    }
    this.queue.push(d);
    this.queuedBytes += d.payload.length;
    this.onReadable?.();
    return true;
  }

  close(): void {
    if (!this.open) return;
    this.open = false;
    this.queue.clear();
    this.queuedBytes = 0;
    this.host.udpUnbind(this.port);
  }
}
