/**
 * A classic libpcap capture file of Ethernet frames, for `tcpdump -r` / Wireshark when
 * debugging a bridge or a stack. Format (pcap-savefile(5)): a 24-byte global header
 * (magic 0xa1b2c3d4 in host order — written little-endian here —, version 2.4, zone 0,
 * sigfigs 0, snaplen, LINKTYPE_ETHERNET = 1), then per frame a 16-byte record header
 * (seconds, microseconds, captured length, original length) and the bytes.
 */
const LINKTYPE_ETHERNET = 1;

export class PcapWriter {
  private readonly chunks: Uint8Array[] = [];
  private size = 0;

  constructor(private readonly snaplen = 0xffff) {
    const h = new DataView(new ArrayBuffer(24));
    h.setUint32(0, 0xa1b2c3d4, true);
    h.setUint16(4, 2, true);
    h.setUint16(6, 4, true);
    h.setUint32(16, snaplen, true);
    h.setUint32(20, LINKTYPE_ETHERNET, true);
    this.push(new Uint8Array(h.buffer));
  }

  /** Record one frame seen at `timeMs` (milliseconds since any epoch). */
  record(frame: Uint8Array, timeMs: number): void {
    const captured = Math.min(frame.length, this.snaplen);
    const us = Math.max(0, Math.round(timeMs * 1000));
    const h = new DataView(new ArrayBuffer(16));
    h.setUint32(0, Math.floor(us / 1_000_000), true);
    h.setUint32(4, us % 1_000_000, true);
    h.setUint32(8, captured, true);
    h.setUint32(12, frame.length, true);
    this.push(new Uint8Array(h.buffer));
    this.push(frame.slice(0, captured));
  }

  private push(b: Uint8Array): void {
    this.chunks.push(b);
    this.size += b.length;
  }

  bytes(): Uint8Array {
    const out = new Uint8Array(this.size);
    let off = 0;
    for (const c of this.chunks) {
      out.set(c, off);
      off += c.length;
    }
    return out;
  }
}
