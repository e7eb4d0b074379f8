/**
 * A small sans-IO IPv4 stack for guest programs: Ethernet, ARP, IPv4, ICMP echo, UDP.
 *
 * It owns no timers and no device. Its world comes in through the constructor: a `send`
 * callback for outgoing frames (netfront's transmit, or a bridge port in tests) and a
 * millisecond clock. Frames come in through `receive(frame, info)`, which copies what it
 * keeps and never throws: every malformed frame is a counted drop. `tick()` runs ARP
 * retransmissions; call it at `nextTimer()`.
 *
 * Checksum offload (netif.h): `receive`'s `info.dataValidated` (NETRXF_data_validated) and
 * `info.csumBlank` (NETRXF_csum_blank: the sender left the checksum for the receiver, the
 * data never crossed a wire) both skip L4 checksum verification (`info.fillBlank` also
 * completes a blank checksum in the frame); the IPv4 header checksum
 * is always verified (RFC 1122 §3.2.1.2). With `txChecksumOffload` the stack leaves UDP
 * checksums partial (the pseudo-header sum, as Linux's CHECKSUM_PARTIAL) and marks the
 * frame `csumBlank` + `dataValidated`, as Linux netfront marks such packets.
 */
import { XenpvError, type Disposable } from '../../base/index.js';
import { BROADCAST_MAC, ETH_HLEN, ETHERTYPE_ARP, ETHERTYPE_IPV4, macKey, parseMac } from '../../devices/net/bridge/mac.js';
import { IPPROTO_ICMP, IPPROTO_UDP, foldSum, internetChecksum } from '../../devices/net/bridge/checksum.js';
import { PLAIN_FRAME, type FrameInfo } from '../../devices/net/bridge/port.js';
import { FrameSlab, ScratchFrame } from '../../devices/net/bridge/slab.js';
import { Ipv4Interface, isMulticastIpv4, toIpv4, type Ipv4 } from './addr.js';
import { ARP_LEN, ARP_REQUEST, ArpTable, DEFAULT_ARP_LIMITS, writeArp, type ArpLimits } from './arp.js';
import { DEFAULT_TTL, IPV4_HLEN, addressesSum, writeIpv4Header } from './ipv4.js';
import { ICMP_DEST_UNREACH, ICMP_ECHO_REQUEST, ICMP_HLEN, ICMP_PORT_UNREACH, writeIcmpHeader } from './icmp.js';
import { UDP_HLEN, UdpSocket, type SendResult, type UdpHost, type UdpSocketOptions } from './udp.js';
import { zeroCounters, type DropReason, type NetStackCounters } from './counters.js';
import { receiveFrame } from './receive.js';

export interface NetStackOptions {
  readonly mac: Uint8Array | string;
  readonly address: Ipv4 | string;
  readonly prefix: number;
  readonly gateway?: Ipv4 | string;
  readonly send: (frame: Uint8Array, info: FrameInfo) => void;
  /**
   * `send` keeps nothing of `frame` once it returns (netfront copies it into a granted page or
   * its backlog): UDP datagrams are then built in one reused buffer, not a fresh one each.
   */
  readonly sendCopies?: boolean;
  /**
   * A buffer of `len` bytes that `send` takes as it is, without copying it (netfront's next
   * free granted page, `NetFront.txBuffer`), or undefined when there is none now: a UDP
   * datagram is then built straight into it, its payload copied once. Valid until the next call.
   */
  readonly txBuffer?: (len: number) => Uint8Array | undefined;
  /**
   * How a UDP payload is copied into its frame, `dst.set(src, at)` by default. A guest kernel
   * gives its memory's copy (DomainMemory.copy): a memmove where payload and frame both lie in
   * guest memory (a payload buffer of guest pages, udpPayloadIn; netfront's granted page).
   */
  readonly copy?: (dst: Uint8Array, at: number, src: Uint8Array) => void;
  /** Milliseconds, monotonic. */
  readonly clock: () => number;
  /**
   * ARP's clock (entry ageing, retransmission), default `clock`: it is read for every frame
   * sent (is the neighbour stale?), so a program may give a coarser one (bridge/clock.ts
   * `taskClock`: once per task), as Linux's neighbour code reads jiffies.
   */
  readonly arpClock?: () => number;
  readonly mtu?: number;
  readonly ttl?: number;
  readonly txChecksumOffload?: boolean;
  readonly arp?: Partial<ArpLimits>;
  /** Linux's icmp_echo_ignore_broadcasts, default on (RFC 1122 §3.2.2.6 allows it). */
  readonly ignoreBroadcastEcho?: boolean;
}

export interface RxInfo {
  /** NETRXF_csum_blank: the TCP/UDP checksum was left blank; verification is skipped. */
  readonly csumBlank?: boolean;
  /** NETRXF_data_validated: the backend vouches for the checksum; verification is skipped. */
  readonly dataValidated?: boolean;
  /**
   * With `csumBlank`: complete the checksum in `frame` (the caller's buffer is written)
   * before the stack uses it, for a caller that keeps or forwards the frame.
   */
  readonly fillBlank?: boolean;
  /**
   * The caller gives `frame` away (it never touches it again): the stack keeps views of it
   * (a UDP payload) instead of copying. netfront's frames are private copies it hands over.
   */
  readonly owned?: boolean;
  /**
   * The caller reuses `frame` once `receive` returns (netfront's `rxTransient`): the stack
   * copies what it keeps, and hands a UDP payload as a span of `frame` to a socket's
   * `onDatagram` (valid during the call), or as a view to a socket that borrows (copied only if
   * it is still queued when the socket's `onReadable` returns).
   */
  readonly transient?: boolean;
}

export interface EchoReply {
  readonly src: Ipv4;
  readonly id: number;
  readonly seq: number;
  readonly ttl: number;
  /** ICMP message length (header + data), what ping prints as "N bytes from". */
  readonly bytes: number;
  readonly data: Uint8Array;
}

interface Pending {
  /** Replaced by a private copy when a datagram built in the reused buffer has to wait for ARP. */
  frame: Uint8Array;
  readonly info: FrameInfo;
}

/** Where a UDP payload starts in its frame (Ethernet, IPv4 without options, UDP). */
const UDP_PAYLOAD_AT = ETH_HLEN + IPV4_HLEN + UDP_HLEN;

/**
 * The payload would sit at the same place in an 8-byte word in the frame as it does now. A
 * driver's lent buffer is a granted page, shared memory, which V8 copies into by 8-byte words
 * only when source and destination agree mod 8, else byte by byte (1472 bytes: ~550 ns against
 * ~75 ns): a payload that does not agree is built in the private scratch and copied twice.
 * Array buffers start 8-aligned, so byteOffset is the address mod 8.
 */
function samePlaceInWord(payload: Uint8Array): boolean {
  return ((payload.byteOffset - UDP_PAYLOAD_AT) & 7) === 0;
}

/**
 * A buffer for UDP payloads of `size` bytes placed as they sit in a frame (mod 8), so the
 * stack builds its datagrams in the driver's page with one word-wise copy (samePlaceInWord).
 */
export function udpPayloadBuffer(size: number): Uint8Array {
  const at = UDP_PAYLOAD_AT & 7;
  return new Uint8Array(new ArrayBuffer(size + at), at, size);
}

/** As udpPayloadBuffer, inside `buf` (8-aligned: a page); undefined when `size` does not fit it. */
export function udpPayloadIn(buf: Uint8Array, size: number): Uint8Array | undefined {
  const at = (UDP_PAYLOAD_AT - buf.byteOffset) & 7;
  return at + size <= buf.length ? buf.subarray(at, at + size) : undefined;
}

function setAt(dst: Uint8Array, at: number, src: Uint8Array): void {
  dst.set(src, at);
}

/** UDP with checksum offload: left partial for the receiver (netfront marks it so). */
const CSUM_PARTIAL: FrameInfo = Object.freeze({ csumBlank: true, dataValidated: true });
const EPHEMERAL_FIRST = 32768; // Linux ip_local_port_range
const EPHEMERAL_LAST = 60999;
/** ICMP error budget: a burst of 6, then one per second (Linux's XRLIM_BURST_FACTOR, icmp_ratelimit). */
const ICMP_ERROR_BURST = 6;
const ICMP_ERROR_INTERVAL_MS = 1000;

export class NetStack implements UdpHost {
  readonly counters: NetStackCounters = zeroCounters();
  readonly mac: Uint8Array;
  readonly macKey: number;
  readonly iface: Ipv4Interface;
  readonly mtu: number;
  readonly ttl: number;
  readonly txChecksumOffload: boolean;
  readonly ignoreBroadcastEcho: boolean;
  readonly clock: () => number;
  /** Called when ARP gives up on a neighbour and drops `count` queued packets. */
  onHostUnreachable: ((ip: Ipv4, count: number) => void) | undefined;
  readonly arp: ArpTable<Pending>;
  readonly sockets = new Map<number, UdpSocket>();
  readonly echoHandlers = new Map<number, (r: EchoReply) => void>();
  private readonly sendFrame: (frame: Uint8Array, info: FrameInfo) => void;
  /** Frames we build and payloads we keep (a fresh buffer each, without a malloc each). */
  readonly slab = new FrameSlab();
  /** Where UDP datagrams are built when `sendCopies` (the largest unfragmented frame fits). */
  private readonly txScratch: ScratchFrame | undefined;
  private readonly txBuffer: ((len: number) => Uint8Array | undefined) | undefined;
  private readonly copyInto: (dst: Uint8Array, at: number, src: Uint8Array) => void;
  /** The frame txBuffer lent last: it must be copied if it has to wait (ARP). */
  private lent: Uint8Array | undefined;
  /** The last payload found to sit as it would in a frame (lendable). */
  private lendablePayload: Uint8Array | undefined;
  private ipId = 0;
  /** transientView's last view, and the frame and span it was made for. */
  private viewFrame: Uint8Array | undefined;
  private viewStart = 0;
  private viewEnd = 0;
  private view: Uint8Array = new Uint8Array(0);
  private nextEphemeral = EPHEMERAL_FIRST;
  private icmpTokens = ICMP_ERROR_BURST;
  private icmpRefillAt = 0;

  constructor(opts: NetStackOptions) {
    this.mac = typeof opts.mac === 'string' ? parseMac(opts.mac) : opts.mac.slice();
    if ((this.mac[0]! & 1) !== 0 || this.mac.length !== 6) throw new XenpvError('EINVAL', 'the stack needs a unicast MAC', {});
    this.macKey = macKey(this.mac);
    this.iface = new Ipv4Interface(opts.address, opts.prefix, opts.gateway);
    this.mtu = opts.mtu ?? 1500;
    if (!Number.isInteger(this.mtu) || this.mtu < 68 || this.mtu > 65535) {
      throw new XenpvError('EINVAL', `invalid MTU ${this.mtu}`, { mtu: this.mtu }); // RFC 791: every host takes 68
    }
    this.ttl = opts.ttl ?? DEFAULT_TTL;
    // RFC 1122 §3.2.1.7: "A host MUST NOT send a datagram with a Time-to-Live (TTL) value of zero."
    if (!Number.isInteger(this.ttl) || this.ttl < 1 || this.ttl > 255) throw new XenpvError('EINVAL', `invalid TTL ${this.ttl}`, {});
    this.txChecksumOffload = opts.txChecksumOffload ?? false;
    this.ignoreBroadcastEcho = opts.ignoreBroadcastEcho ?? true;
    this.clock = opts.clock;
    this.sendFrame = opts.send;
    this.txScratch = opts.sendCopies === true ? new ScratchFrame(ETH_HLEN + this.mtu) : undefined;
    this.txBuffer = opts.txBuffer;
    this.copyInto = opts.copy ?? setAt;
    this.arp = new ArpTable<Pending>(opts.arpClock ?? opts.clock, {
      request: (ip) => this.sendArp(ARP_REQUEST, BROADCAST_MAC, new Uint8Array(6), ip),
      flush: (_ip, mac, packets) => {
        for (const p of packets) this.transmitTo(mac, p.frame, p.info);
      },
      drop: (ip, count) => {
        this.counters.arpDrops += count;
        this.onHostUnreachable?.(ip, count);
      },
    }, { ...DEFAULT_ARP_LIMITS, ...opts.arp });
  }

  get address(): Ipv4 {
    return this.iface.address;
  }

  /**
   * Feed one received Ethernet frame. Never throws on any bytes (only a throwing callback
   * of the caller's own could escape); the frame may be reused afterwards.
   */
  receive(frame: Uint8Array, info: RxInfo = {}): void {
    receiveFrame(this, frame, info);
  }

  /**
   * `frame.subarray(start, end)` for a view used only until the frame is reused (a borrowed
   * payload, or the source of a private copy): a receiver handed the same reused frame with
   * the same span (a stream's) gets the view it got last instead of a new one per datagram.
   */
  transientView(frame: Uint8Array, start: number, end: number): Uint8Array {
    if (frame !== this.viewFrame || start !== this.viewStart || end !== this.viewEnd) {
      this.view = frame.subarray(start, end);
      this.viewFrame = frame;
      this.viewStart = start;
      this.viewEnd = end;
    }
    return this.view;
  }

  /** Run due timers (ARP retransmission and expiry). */
  tick(): void {
    this.arp.tick();
  }

  nextTimer(): number | undefined {
    return this.arp.nextTimer();
  }

  /** Stack-internal: count a discarded frame. */
  drop(reason: DropReason): void {
    this.counters.rxDropped++;
    this.counters[reason]++;
  }

  /** Bind a UDP port (0 = an ephemeral one). */
  udpBind(port = 0, opts: UdpSocketOptions = {}): UdpSocket {
    const p = port === 0 ? this.ephemeralPort() : port;
    if (!Number.isInteger(p) || p < 1 || p > 0xffff) throw new XenpvError('EINVAL', `invalid UDP port ${port}`, { port });
    if (this.sockets.has(p)) throw new XenpvError('EADDRINUSE', `UDP port ${p} is in use`, { port: p });
    const s = new UdpSocket(this, p, opts);
    this.sockets.set(p, s);
    return s;
  }

  udpUnbind(port: number): void {
    this.sockets.delete(port);
  }

  private ephemeralPort(): number {
    for (let i = 0; i <= EPHEMERAL_LAST - EPHEMERAL_FIRST; i++) {
      const p = this.nextEphemeral;
      this.nextEphemeral = p === EPHEMERAL_LAST ? EPHEMERAL_FIRST : p + 1;
      if (!this.sockets.has(p)) return p;
    }
    throw new XenpvError('EADDRINUSE', 'no ephemeral UDP port left', {});
  }

  /** The largest UDP payload that fits one unfragmented datagram. */
  get maxUdpPayload(): number {
    return this.mtu - IPV4_HLEN - UDP_HLEN;
  }

  udpSend(srcPort: number, dst: Ipv4 | string, dstPort: number, payload: Uint8Array): SendResult {
    if (!Number.isInteger(dstPort) || dstPort < 1 || dstPort > 0xffff) {
      throw new XenpvError('EINVAL', `invalid UDP port ${dstPort}`, { port: dstPort });
    }
    if (payload.length > this.maxUdpPayload) {
      throw new XenpvError('EMSGSIZE', `UDP payload ${payload.length} > ${this.maxUdpPayload} (no fragmentation)`, {});
    }
    const len = UDP_HLEN + payload.length;
    const offload = this.txChecksumOffload;
    const info = offload ? CSUM_PARTIAL : PLAIN_FRAME;
    const to = toIpv4(dst);
    // Built in place, no closure: this is the per-datagram path of a stream sender.
    const frame = this.ipFrame(to, IPPROTO_UDP, len, true, this.lendable(payload));
    if (frame === undefined) return 'no-route';
    const off = ETH_HLEN + IPV4_HLEN;
    frame[off] = srcPort >> 8;
    frame[off + 1] = srcPort & 0xff;
    frame[off + 2] = dstPort >> 8;
    frame[off + 3] = dstPort & 0xff;
    frame[off + 4] = len >> 8;
    frame[off + 5] = len & 0xff;
    frame[off + 6] = 0; // the checksum field is summed as zero (the buffer may be reused)
    frame[off + 7] = 0;
    this.copyInto(frame, off + UDP_HLEN, payload);
    // RFC 768's pseudo-header from the values (not read back from the frame).
    const pseudo = addressesSum(this.address, to) + IPPROTO_UDP + len;
    // Partial: the folded pseudo-header sum the receiver completes; full: RFC 768, 0 sent as all ones.
    const sum = offload ? foldSum(pseudo) : internetChecksum(frame, off, off + len, pseudo) || 0xffff;
    frame[off + 6] = sum >> 8;
    frame[off + 7] = sum & 0xff;
    this.counters.udpTx++;
    return this.ipOut(to, frame, info);
  }

  /** Send an ICMP echo request; replies go to the handler registered for `id`. */
  sendEchoRequest(dst: Ipv4 | string, id: number, seq: number, data: Uint8Array): SendResult {
    if (ICMP_HLEN + data.length + IPV4_HLEN > this.mtu) {
      throw new XenpvError('EMSGSIZE', `echo data ${data.length} does not fit the MTU`, {});
    }
    return this.sendIcmp(toIpv4(dst), ICMP_ECHO_REQUEST, 0, ((id & 0xffff) << 16) | (seq & 0xffff), data);
  }

  onEchoReply(id: number, handler: (r: EchoReply) => void): Disposable {
    if (this.echoHandlers.has(id)) throw new XenpvError('EADDRINUSE', `echo id ${id} is in use`, { id });
    this.echoHandlers.set(id, handler);
    return { dispose: () => this.echoHandlers.delete(id) };
  }

  /** Stack-internal: an ICMP message with a fresh checksum. */
  sendIcmp(dst: Ipv4, type: number, code: number, rest: number, data: Uint8Array): SendResult {
    return this.ipSend(dst, IPPROTO_ICMP, ICMP_HLEN + data.length, PLAIN_FRAME, (buf, off) => {
      writeIcmpHeader(buf, off, type, code, rest);
      buf.set(data, off + ICMP_HLEN);
      const sum = internetChecksum(buf, off, off + ICMP_HLEN + data.length);
      buf[off + 2] = sum >> 8;
      buf[off + 3] = sum & 0xff;
    });
  }

  /**
   * Stack-internal: ICMP port unreachable for a datagram at frame[ipOff, ipEnd), carrying
   * "the internet header plus the first 64 bits of the original datagram's data" (RFC 792),
   * within the error budget.
   */
  sendPortUnreachable(src: Ipv4, frame: Uint8Array, ipOff: number, headerLength: number, ipEnd: number): void {
    const now = this.clock();
    const refills = Math.floor((now - this.icmpRefillAt) / ICMP_ERROR_INTERVAL_MS);
    if (refills > 0) {
      this.icmpTokens = Math.min(ICMP_ERROR_BURST, this.icmpTokens + refills);
      this.icmpRefillAt = now;
    }
    if (this.icmpTokens === 0) return;
    this.icmpTokens--;
    const quoted = frame.slice(ipOff, Math.min(ipEnd, ipOff + headerLength + 8));
    if (this.sendIcmp(src, ICMP_DEST_UNREACH, ICMP_PORT_UNREACH, 0, quoted) !== 'no-route') this.counters.icmpUnreachTx++;
  }

  /** Build an IPv4 datagram in an Ethernet frame, resolve the next hop and send or queue it. */
  private ipSend(
    dst: Ipv4, protocol: number, l4Length: number, info: FrameInfo, fill: (buf: Uint8Array, off: number) => void,
  ): SendResult {
    const frame = this.ipFrame(dst, protocol, l4Length);
    if (frame === undefined) return 'no-route';
    fill(frame, ETH_HLEN + IPV4_HLEN);
    return this.ipOut(dst, frame, info);
  }

  /**
   * A frame with its IPv4 header and EtherType written, or undefined (counted) when `dst` has
   * no route; the caller writes the rest, every byte.
   * `reuse`: in the reused buffer when `sendCopies` allows it, or with `lend` in the driver's
   * lent buffer (`txBuffer`) if it has one (either is copied if it must wait: ipOut).
   */
  private ipFrame(dst: Ipv4, protocol: number, l4Length: number, reuse = false, lend = false): Uint8Array | undefined {
    if (this.iface.nextHop(dst) === undefined && dst !== this.address) {
      this.counters.ipNoRoute++;
      return undefined;
    }
    const len = ETH_HLEN + IPV4_HLEN + l4Length;
    const frame = reuse ? this.reusedFrame(len, lend) : this.slab.alloc(len);
    this.ipId = (this.ipId + 1) & 0xffff;
    writeIpv4Header(frame, ETH_HLEN, this.address, dst, protocol, this.ipId, this.ttl, l4Length);
    frame[12] = ETHERTYPE_IPV4 >> 8;
    frame[13] = ETHERTYPE_IPV4 & 0xff;
    return frame;
  }

  /**
   * samePlaceInWord(payload), remembered for the last payload buffer that passed: a stream
   * sends one buffer again and again, and its byteOffset is a call into V8 each time.
   */
  private lendable(payload: Uint8Array): boolean {
    if (payload === this.lendablePayload) return true;
    if (!samePlaceInWord(payload)) return false;
    this.lendablePayload = payload;
    return true;
  }

  /** A frame buffer that `send` copies or takes as it is, not kept by us past this datagram. */
  private reusedFrame(len: number, lend: boolean): Uint8Array {
    const lent = lend ? this.txBuffer?.(len) : undefined;
    this.lent = lent;
    if (lent !== undefined) return lent;
    const scratch = this.txScratch;
    return scratch !== undefined && len <= scratch.bytes.length ? scratch.frame(len) : this.slab.alloc(len);
  }

  /** Send a built frame: loopback, broadcast, multicast, or to the next hop's MAC (queued on ARP). */
  private ipOut(dst: Ipv4, frame: Uint8Array, info: FrameInfo): SendResult {
    if (dst === this.address) {
      // Loopback: straight back into our own receive path, as Linux's `lo` would.
      frame.set(this.mac, 0);
      frame.set(this.mac, 6);
      this.receive(frame, info);
      return 'sent';
    }
    if (this.iface.isBroadcast(dst)) return this.transmitTo(BROADCAST_MAC, frame, info);
    if (isMulticastIpv4(dst)) {
      // RFC 1112 §6.4: 01-00-5E-00-00-00 plus the low-order 23 bits of the group address.
      return this.transmitTo(Uint8Array.of(0x01, 0x00, 0x5e, (dst >>> 16) & 0x7f, (dst >>> 8) & 0xff, dst & 0xff), frame, info);
    }
    const hop = this.iface.nextHop(dst)!;
    // A known neighbour (every datagram of a stream but the first): no Pending, no result object.
    const known = this.arp.lookup(hop);
    if (known !== undefined) return this.transmitTo(known, frame, info);
    const overflowsBefore = this.arp.queueDrops;
    const pending: Pending = { frame, info };
    const r = this.arp.resolve(hop, pending);
    if ('mac' in r) return this.transmitTo(r.mac, frame, info);
    if (r.queued && (frame === this.lent || frame.buffer === this.txScratch?.bytes.buffer)) pending.frame = this.slab.copy(frame);
    // A full pending queue drops its oldest packet; a full table refuses this one.
    this.counters.arpDrops += this.arp.queueDrops - overflowsBefore + (r.queued ? 0 : 1);
    return r.queued ? 'queued' : 'dropped';
  }

  private transmitTo(dstMac: Uint8Array, frame: Uint8Array, info: FrameInfo): 'sent' {
    // Twelve bytes by hand: two TypedArray.set calls cost more than the bytes (per datagram).
    const mac = this.mac;
    for (let i = 0; i < 6; i++) {
      frame[i] = dstMac[i]!;
      frame[6 + i] = mac[i]!;
    }
    this.counters.txFrames++;
    this.counters.txBytes += frame.length;
    this.sendFrame(frame, info);
    return 'sent';
  }

  /** Stack-internal: an ARP request or reply. */
  sendArp(op: number, dstMac: Uint8Array, targetMac: Uint8Array, targetIp: Ipv4): void {
    const frame = new Uint8Array(ETH_HLEN + ARP_LEN);
    frame[12] = ETHERTYPE_ARP >> 8;
    frame[13] = ETHERTYPE_ARP & 0xff;
    writeArp(frame, ETH_HLEN, { op, senderMac: this.mac, senderIp: this.address, targetMac, targetIp });
    if (op === ARP_REQUEST) this.counters.arpRequestsTx++;
    else this.counters.arpRepliesTx++;
    this.transmitTo(dstMac, frame, PLAIN_FRAME);
  }
}
