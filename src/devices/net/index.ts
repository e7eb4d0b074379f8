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
 * netback takes one-slot tx packets in batches of up to 32 (tx-batch.ts, Linux's tx gops
 * batch), copied out with one GNTTABOP_copy call (the hypervisor model then takes the
 * granter's domain reference and grant lock once per run of ops), each into a private page
 * that xenbr0 hands straight to a netback that copies it into its guest's buffers
 * (`PortSink.copiesFrame`); only what has to wait in a queue or floods is copied again. Reused
 * grant-copy ops, objects for the ring entries we write, and frame views; one-slot fast paths in
 * netback's tx, netfront's tx and rx (a transient receiver's frame read in its page while the
 * backend's access is suspended, as Linux ends the grant first; rx buffers reposted in the
 * order they came back); no clock reading per frame (bridge/clock.ts `taskClock`
 * for the FDB, ARP and the stream receiver; an unlimited credit reads none); the guest stack
 * builds UDP in one reused buffer (`sendCopies`) and writes MACs byte by byte; udp-send sends
 * no more than `NetFront.txSpace()` (nothing is copied into the backlog first). Wake-ups:
 * netfront has the whole tx ring out (256 pages)
 * and asks for tx completions half-way to what is outstanding (Linux netfront's tx
 * `rsp_event`); netback kicks a single rx frame at the end of its task, a burst once it
 * stops growing (<= 192 frames); netfront's tx kick goes once per event-loop turn.
 * netback's rx side stages one-slot frames the bridge hands over as stable (a tx batch's
 * pages, held until the sender's burst ends, or frames the bridge queued) and copies them into
 * the guest's buffers with one GNTTABOP_copy call per burst (rx-batch.ts, Linux's rx copy
 * batch), responses after the copy. The per-packet context objects (VifContext, netfront's
 * queue context, the bridge's PortHost) have methods, never getters: an object literal with a
 * getter is a dictionary-mode object, and every load from it was a generic LoadIC call.
 * Where the rest goes (bench net, 1472-byte UDP, worker layout, November 2026, with other
 * engineers' tests sharing the two cores): about 0.7 us of CPU per packet in the sender,
 * 1.0-1.1 in dom0 and 0.6 in the receiver (before this round 0.75-0.8 / 1.3-1.6 / 0.7-0.8 in
 * the same alternating runs), ~2.3 in all; a run's throughput is what CPU the other
 * processes leave (349 kpps x 2.3 us = 0.8 of a core in the final run). Four copies of the
 * frame are left, one per hop (into the granted page, out of it in dom0, into the receiver's
 * page, out of it), each ~70-80 ns: V8 copies anything touching a SharedArrayBuffer with a
 * word-by-word relaxed memmove (~27 GB/s, however the copy is called: set, copyWithin,
 * Buffer.copy), ~15% of dom0's share. The rest of the grant ops (checks, the GTF_*
 * compare-exchange and release, the domain reference and grant lock, now once per batch each
 * way) is ~10%; event-channel kicks (~0.005 per packet per ring) ~7%, as each wakes a thread
 * that may then preempt dom0; the bridge and netback bookkeeping (ring slots, FDB, queues)
 * tens of ns each. About a fifth of the frames (22% in one run) wait in the receiver's bridge
 * queue while the receiver is behind and are copied once more (a slab view). One grant-to-grant copy per
 * forwarded packet would not be cheaper: dom0 must still write its private copy of the header
 * over the copied one (the sender can rewrite its page between dom0's header copy and the
 * data copy, past the bridge's anti-spoofing check), so three ops replace two to save one
 * 70 ns memmove. Copies on shared memory whose source and destination offsets differ mod 8
 * are 6-8x slower: every copy on this path is at equal alignment.
 *
 * Not implemented: the static gref mapping ("staging grants", NOT_SUPPORTED as in Linux),
 * XDP headroom (Linux-only keys), the deprecated gso_prefix, bounce buffers for trusted=0
 * (netfront always copies received data out of shared pages once, and transmit pages hold only
 * packet data).
 */
export * from './protocol.js';
export { NetBack, type NetBackOptions, type NetBackStats, type BackLimits } from './back.js';
export { NetFront, DEFAULT_HASH_KEY, type NetFrontOptions, type NetFrontFeatures, type RxFrameInfo } from './front.js';
export type { FrontCounters } from './front-queue-context.js';
export type { BackCounters } from './back-queue.js';
export { HashConfig, hashInput, SUPPORTED_HASH_TYPES } from './hash.js';
export { parseTxPacket, type TxVerdict, type TxPacket } from './tx-parse.js';
export { handleCtrlRequest } from './ctrl-back.js';
export { frameMemoryOf } from './frame-memory.js';
