/**
 * The receive path of NetStack: Ethernet → ARP | IPv4 → ICMP | UDP. Each function validates
 * the bytes it owns before acting on them and ends in either an action or one counted drop.
 */
import { ETH_HLEN, ETHERTYPE_ARP, ETHERTYPE_IPV4, isGroupMac, isZeroMac, macKey, BROADCAST_KEY } from '../../devices/net/bridge/mac.js';
import { IPPROTO_ICMP, IPPROTO_UDP, fillL4Checksum, internetChecksum, ipv4PseudoSum } from '../../devices/net/bridge/checksum.js';
import { isMulticastIpv4, readIpv4, type Ipv4 } from './addr.js';
import { ARP_REPLY, ARP_REQUEST, parseArp } from './arp.js';
import { checkIpv4Header, isIpv4Fragment } from './ipv4.js';
import { ICMP_DEST_UNREACH, ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST, ICMP_HLEN, parseIcmp } from './icmp.js';
import { UDP_HLEN } from './udp.js';
import type { NetStack, RxInfo } from './stack.js';

export function receiveFrame(stack: NetStack, frame: Uint8Array, info: RxInfo): void {
  stack.counters.rxFrames++;
  stack.counters.rxBytes += frame.length;
  if (frame.length < ETH_HLEN) return stack.drop('ethRunt');
  const dst = macKey(frame, 0);
  // Unicast to us or broadcast; no multicast group is joined.
  if (dst !== stack.macKey && dst !== BROADCAST_KEY) return stack.drop('ethNotForUs');
  const type = (frame[12]! << 8) | frame[13]!;
  if (type === ETHERTYPE_ARP) return receiveArp(stack, frame);
  if (type === ETHERTYPE_IPV4) return receiveIpv4(stack, frame, info);
  return stack.drop('ethUnknownType');
}

/**
 * RFC 826 "Packet Reception": merge the sender into the table if it is there; if we are
 * the target, add it if it was not, and answer a request with a reply to its sender.
 */
function receiveArp(stack: NetStack, frame: Uint8Array): void {
  const p = parseArp(frame, ETH_HLEN, frame.length);
  if (p === undefined || isGroupMac(p.senderMac) || isZeroMac(p.senderMac)) return stack.drop('arpBad');
  // Someone else claims our address (or our own frame came back): learn nothing from it.
  if (p.senderIp === stack.address) return stack.drop('arpConflict');
  stack.counters.arpRx++;
  const forUs = p.targetIp === stack.address;
  // 0.0.0.0 as sender is an RFC 5227 probe: it has no address to learn.
  if (p.senderIp !== 0) stack.arp.update(p.senderIp, p.senderMac, forUs);
  if (forUs && p.op === ARP_REQUEST) stack.sendArp(ARP_REPLY, p.senderMac, p.senderMac, p.senderIp);
}

/** The fields of a checked IPv4 header the upper layers use (read from the frame, no object per datagram). */
interface Ip {
  readonly src: Ipv4;
  readonly dst: Ipv4;
  readonly ttl: number;
}

function receiveIpv4(stack: NetStack, frame: Uint8Array, info: RxInfo): void {
  const bad = checkIpv4Header(frame, ETH_HLEN, frame.length);
  if (bad !== undefined) return stack.drop(bad === 'header' ? 'ipBadHeader' : bad === 'length' ? 'ipBadLength' : 'ipBadChecksum');
  if (isIpv4Fragment(frame, ETH_HLEN)) return stack.drop('ipFragments');
  const dst = readIpv4(frame, ETH_HLEN + 16);
  const src = readIpv4(frame, ETH_HLEN + 12);
  const broadcast = stack.iface.isBroadcast(dst);
  if (dst !== stack.address && !broadcast) return stack.drop('ipNotForUs');
  // RFC 1122 §3.2.1.3: discard a datagram whose source is a broadcast or multicast address.
  if (stack.iface.isBroadcast(src) || isMulticastIpv4(src)) return stack.drop('ipBadSource');
  stack.counters.ipRx++;
  const l4 = ETH_HLEN + (frame[ETH_HLEN]! & 0x0f) * 4;
  const end = ETH_HLEN + ((frame[ETH_HLEN + 2]! << 8) | frame[ETH_HLEN + 3]!);
  const protocol = frame[ETH_HLEN + 9]!;
  const skipCsum = info.dataValidated === true || info.csumBlank === true;
  if (skipCsum) stack.counters.rxCsumSkipped++;
  if (info.csumBlank === true && info.fillBlank === true && fillL4Checksum(frame)) stack.counters.rxCsumFilled++;
  if (protocol === IPPROTO_ICMP) return receiveIcmp(stack, frame, { src, dst, ttl: frame[ETH_HLEN + 8]! }, l4, end, skipCsum, broadcast);
  if (protocol === IPPROTO_UDP) return receiveUdp(stack, frame, src, dst, l4, end, skipCsum, broadcast, info);
  return stack.drop('ipUnknownProtocol');
}

function receiveIcmp(
  stack: NetStack, frame: Uint8Array, h: Ip, l4: number, end: number, skipCsum: boolean, broadcast: boolean,
): void {
  if (end - l4 < ICMP_HLEN) return stack.drop('icmpBad');
  if (!skipCsum && internetChecksum(frame, l4, end) !== 0) return stack.drop('icmpBadChecksum');
  const m = parseIcmp(frame, l4, end);
  if (m.type === ICMP_ECHO_REQUEST) {
    if (broadcast && stack.ignoreBroadcastEcho) return stack.drop('icmpEchoIgnored');
    stack.counters.icmpEchoRequestsRx++;
    // RFC 792: "the source and destination addresses are simply reversed, the type code
    // changed to 0, and the checksum recomputed"; identifier, sequence and data echo back.
    const r = stack.sendIcmp(h.src, ICMP_ECHO_REPLY, 0, ((m.id << 16) | m.seq) >>> 0, m.data);
    if (r !== 'no-route') stack.counters.icmpEchoRepliesTx++;
    return;
  }
  if (m.type === ICMP_ECHO_REPLY) {
    stack.counters.icmpEchoRepliesRx++;
    stack.echoHandlers.get(m.id)?.({ src: h.src, id: m.id, seq: m.seq, ttl: h.ttl, bytes: end - l4, data: m.data.slice() });
    return;
  }
  if (m.type === ICMP_DEST_UNREACH) {
    stack.counters.icmpUnreachRx++;
    return;
  }
  return stack.drop('icmpOther');
}

function receiveUdp(
  stack: NetStack, frame: Uint8Array, src: Ipv4, dst: Ipv4, l4: number, end: number, skipCsum: boolean, broadcast: boolean, info: RxInfo,
): void {
  if (end - l4 < UDP_HLEN) return stack.drop('udpBadLength');
  const length = (frame[l4 + 4]! << 8) | frame[l4 + 5]!;
  if (length < UDP_HLEN || l4 + length > end) return stack.drop('udpBadLength');
  const checksum = (frame[l4 + 6]! << 8) | frame[l4 + 7]!;
  if (checksum !== 0 && !skipCsum) {
    if (internetChecksum(frame, l4, l4 + length, ipv4PseudoSum(frame, ETH_HLEN, IPPROTO_UDP, length)) !== 0) {
      return stack.drop('udpBadChecksum');
    }
  }
  const dstPort = (frame[l4 + 2]! << 8) | frame[l4 + 3]!;
  const socket = stack.sockets.get(dstPort);
  if (socket === undefined) {
    // RFC 1122 §4.1.3.1: SHOULD send Port Unreachable; §3.2.2: never for a broadcast.
    if (!broadcast) stack.sendPortUnreachable(src, frame, ETH_HLEN, l4 - ETH_HLEN, end);
    return stack.drop('udpNoPort');
  }
  stack.counters.udpRx++;
  const srcPort = (frame[l4]! << 8) | frame[l4 + 1]!;
  const direct = socket.onDatagram;
  if (direct !== undefined) {
    // Handed over at once, valid during the call only (UdpSocketOptions.onDatagram): a span.
    direct(frame, l4 + UDP_HLEN, l4 + length, src, srcPort);
    return;
  }
  // An owned frame's payload is kept as it is; any other is copied before the frame is reused.
  const owned = info.owned === true;
  const view = owned ? frame.subarray(l4 + UDP_HLEN, l4 + length) : stack.transientView(frame, l4 + UDP_HLEN, l4 + length);
  const ok = socket.push({ srcIp: src, srcPort, dstIp: dst, dstPort, payload: owned ? view : stack.slab.copy(view) });
  if (!ok) stack.drop('udpQueueFull');
}
