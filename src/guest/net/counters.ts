/**
 * The guest stack's counters, like Linux's `/proc/net/snmp` and `ip -s link`. Every
 * received frame is counted once in `rxFrames`, and every frame the stack discards is
 * counted once in `rxDropped` and once under its reason.
 */
export interface NetStackCounters {
  rxFrames: number;
  rxBytes: number;
  rxDropped: number;
  txFrames: number;
  txBytes: number;
  // Drop reasons.
  ethRunt: number;
  ethNotForUs: number;
  ethUnknownType: number;
  arpBad: number;
  arpConflict: number;
  ipBadHeader: number;
  ipBadLength: number;
  ipBadChecksum: number;
  ipFragments: number;
  ipNotForUs: number;
  ipBadSource: number;
  ipUnknownProtocol: number;
  icmpBad: number;
  icmpBadChecksum: number;
  icmpEchoIgnored: number;
  icmpOther: number;
  udpBadLength: number;
  udpBadChecksum: number;
  udpNoPort: number;
  udpQueueFull: number;
  // Events.
  arpRx: number;
  arpRequestsTx: number;
  arpRepliesTx: number;
  /** Packets lost while waiting for ARP: queue overflow, table full, or no answer. */
  arpDrops: number;
  ipRx: number;
  ipNoRoute: number;
  icmpEchoRequestsRx: number;
  icmpEchoRepliesTx: number;
  icmpEchoRepliesRx: number;
  icmpUnreachRx: number;
  icmpUnreachTx: number;
  udpRx: number;
  udpTx: number;
  rxCsumSkipped: number;
  rxCsumFilled: number;
}

export type DropReason =
  | 'ethRunt' | 'ethNotForUs' | 'ethUnknownType' | 'arpBad' | 'arpConflict'
  | 'ipBadHeader' | 'ipBadLength' | 'ipBadChecksum' | 'ipFragments' | 'ipNotForUs' | 'ipBadSource'
  | 'ipUnknownProtocol' | 'icmpBad' | 'icmpBadChecksum' | 'icmpEchoIgnored' | 'icmpOther'
  | 'udpBadLength' | 'udpBadChecksum' | 'udpNoPort' | 'udpQueueFull';

export function zeroCounters(): NetStackCounters {
  return {
    rxFrames: 0, rxBytes: 0, rxDropped: 0, txFrames: 0, txBytes: 0,
    ethRunt: 0, ethNotForUs: 0, ethUnknownType: 0, arpBad: 0, arpConflict: 0,
    ipBadHeader: 0, ipBadLength: 0, ipBadChecksum: 0, ipFragments: 0, ipNotForUs: 0, ipBadSource: 0,
    ipUnknownProtocol: 0, icmpBad: 0, icmpBadChecksum: 0, icmpEchoIgnored: 0, icmpOther: 0,
    udpBadLength: 0, udpBadChecksum: 0, udpNoPort: 0, udpQueueFull: 0,
    arpRx: 0, arpRequestsTx: 0, arpRepliesTx: 0, arpDrops: 0, ipRx: 0, ipNoRoute: 0,
    icmpEchoRequestsRx: 0, icmpEchoRepliesTx: 0, icmpEchoRepliesRx: 0, icmpUnreachRx: 0, icmpUnreachTx: 0,
    udpRx: 0, udpTx: 0, rxCsumSkipped: 0, rxCsumFilled: 0,
  };
}
