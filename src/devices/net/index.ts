/**
 * The PV network device class (xen/io/netif.h): NetFront (guest) and NetBack (dom0, a port of
 * a learning bridge), the protocol's keys and codecs, and the pieces they are built from.
 *
 * What is implemented, on both ends: rx-copy (GNTTABOP_copy both ways; rx-flip refused),
 * feature-rx-notify, scatter-gather (1 + 18 follow-on slots, Linux's limit), GSO TCPv4/TCPv6
 * extra info, checksum flags (csum_blank, data_validated, no-csum-offload, ipv6-csum-offload),
 * split event channels, multi-queue (queue-N/ keys), the control ring with Toeplitz hashing
 * (algorithm, flags, key, mapping table; HASH extras on rx), multicast control (static and
 * dynamic, MCAST_ADD/DEL dummy transmits), the vif `rate` credit, per-vif counters, and
 * reconnection after a backend restart or a fatal error.
 *
 * Hostile peers: netback applies Linux netback's verdicts (tx-parse.ts: drops answered with
 * NETIF_RSP_ERROR, fatal errors disable the vif and close it with an error node); netfront
 * checks every response (R5) and goes to a sticky error state on a broken ring. Event storms
 * are bounded per queue (a budget per event, an allowance per window).
 *
 * Flow control (not in Linux, whose bridge drops a stream faster than its receiver): a
 * known-unicast frame into a half-full bridge egress queue makes the sender's netback stop
 * taking its tx ring until that queue drains (bridge/port.ts `backPressure`, back-queue.ts
 * `pause`), so the guest's ring and netfront backlog fill and a sender that honours
 * `NetFront.txBacklogged`/`waitTxRoom` waits. A receiver that delivers nothing for 100 ms is
 * not waited for (frames to it are dropped at its queue, as before).
 *
 * Per-packet costs kept low: packet buffers come from 64 KiB slab chunks (bridge/slab.ts);
 * netback copies a frame of a page or less into one reused private buffer, which xenbr0 hands
 * straight to a netback that copies it into its guest's buffers (`PortSink.copiesFrame`), and
 * copies only what has to wait in a queue or floods; one reused grant-copy op per direction;
 * one-slot fast paths in netback's tx parser and netfront's rx; the guest stack builds UDP in
 * one reused buffer (`sendCopies`). Wake-ups: netfront has the whole tx ring out (256 pages)
 * and asks for tx completions half-way to what is outstanding (Linux netfront's tx
 * `rsp_event`); netback kicks a single rx frame at the end of its task, a burst once it
 * stops growing (<= 192 frames); netfront's tx kick goes once per event-loop turn.
 * Where the rest goes (bench net, 1472-byte UDP, worker layout): about 1.5 us of CPU per
 * packet in the sender, 3 in dom0 (of which ~1.8 are the two GNTTABOP_copy ops of the
 * hypervisor model, ~0.9 us each), 1.7 in the receiver.
 *
 * Not implemented: the static gref mapping ("staging grants", NOT_SUPPORTED as in Linux),
 * XDP headroom (Linux-only keys), the deprecated gso_prefix, bounce buffers for trusted=0
 * (netfront always copies received data out of shared pages once, and transmit pages hold only
 * packet data).
 */
export * from './protocol.js';
export { NetBack, type NetBackOptions, type NetBackStats, type BackLimits } from './back.js';
export { NetFront, DEFAULT_HASH_KEY, type NetFrontOptions, type NetFrontFeatures, type RxFrameInfo } from './front.js';
export type { FrontCounters } from './front-queue.js';
export type { BackCounters } from './back-queue.js';
export { HashConfig, hashInput, SUPPORTED_HASH_TYPES } from './hash.js';
export { parseTxPacket, type TxVerdict, type TxPacket } from './tx-parse.js';
export { handleCtrlRequest } from './ctrl-back.js';
