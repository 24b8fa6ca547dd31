/**
 * RTL8169 register offsets and bits, named as Linux's r8169 names them (drivers/net/ethernet/realtek/
 * r8169_main.c) and as the RTL8169 datasheet (rev 1.21) lays them out. Offsets are bytes into the MMIO window.
 * @module
 */

/** Size of the MMIO window the model decodes (the chip's BAR is 256 bytes). */
export const MMIO_SIZE = 256;

// --- Register offsets -------------------------------------------------------------------------------------
/** IDR0..5: station (MAC) address; writes need Cfg9346 unlocked. */
export const MAC0 = 0x00;
/** MAR0..7: 64-bit multicast hash filter; bit n = byte n >> 3, bit n & 7. */
export const MAR0 = 0x08;
/** Tally counter dump address (storage only in the model). */
export const CounterAddrLow = 0x10;
export const CounterAddrHigh = 0x14;
/** TNPDS: normal-priority TX ring base (256-byte aligned). Writing Low resets the NIC's TX index. */
export const TxDescStartAddrLow = 0x20;
export const TxDescStartAddrHigh = 0x24;
/** THPDS: high-priority TX ring base (storage only: the model serves the normal-priority queue). */
export const TxHDescStartAddrLow = 0x28;
export const TxHDescStartAddrHigh = 0x2c;
/** ChipCmd (8 bit). */
export const ChipCmd = 0x37;
/** TxPoll (8 bit): the TX doorbell. */
export const TxPoll = 0x38;
/** IntrMask (16 bit): same bits as IntrStatus. */
export const IntrMask = 0x3c;
/** IntrStatus (16 bit): write 1 to clear. */
export const IntrStatus = 0x3e;
/** TxConfig (32 bit); bits 30:26 and 23:20 read back the chip's XID. */
export const TxConfig = 0x40;
/** RxConfig (32 bit): accept bits, FIFO threshold, DMA burst. */
export const RxConfig = 0x44;
/** MissedPacketCounter (MPC, 24 bit in a 32-bit register): writing any value clears it. */
export const RxMissed = 0x4c;
/** Cfg9346 (8 bit): 0xC0 unlocks the config registers, 0x00 locks them. */
export const Cfg9346 = 0x50;
/** Config0..Config5 (8 bit each, 0x51..0x56): writable only while unlocked. */
export const Config0 = 0x51;
export const Config5 = 0x56;
/** PHYstatus (8 bit, read-only). */
export const PHYstatus = 0x6c;
/** RxMaxSize (16 bit): largest frame (including FCS) the NIC accepts. */
export const RxMaxSize = 0xda;
/** C+ command register (16 bit). */
export const CPlusCmd = 0xe0;
/** Interrupt mitigation (16 bit, storage only in the model). */
export const IntrMitigate = 0xe2;
/** RDSAR: RX ring base (256-byte aligned). Writing Low resets the NIC's RX index. */
export const RxDescAddrLow = 0xe4;
export const RxDescAddrHigh = 0xe8;
/** MaxTxPacketSize / EarlyTxThres (8 bit, in 128-byte units on the 8169; storage only). */
export const MaxTxPacketSize = 0xec;

// --- CounterAddrLow command bits (r8169: rtl8169_update_counters / rtl8169_reset_counters) --------------
/** Dump the tally counters to the 64-byte-aligned address in CounterAddrHigh:Low; clears when done. */
export const CounterDump = 0x08;
/** Reset the tally counters; clears when done. */
export const CounterReset = 0x01;
/** Size of the tally counter block (struct rtl8169_counters). */
export const TALLY_SIZE = 64;

// --- ChipCmd bits -----------------------------------------------------------------------------------------
/** Software reset; self-clearing when the reset is complete. */
export const CmdReset = 0x10;
export const CmdRxEnb = 0x08;
export const CmdTxEnb = 0x04;

// --- TxPoll bits ------------------------------------------------------------------------------------------
/** High-priority queue poll. */
export const HPQ = 0x80;
/** Normal-priority queue poll: the doorbell a driver rings after handing descriptors over. */
export const NPQ = 0x40;
/** Forced software interrupt (raises SWInt). */
export const FSWInt = 0x01;

// --- IntrStatus / IntrMask bits ---------------------------------------------------------------------------
export const SYSErr = 0x8000;
export const PCSTimeout = 0x4000;
export const SWInt = 0x0100;
export const TxDescUnavail = 0x0080;
export const RxFIFOOver = 0x0040;
export const LinkChg = 0x0020;
/** RX descriptor unavailable (RDU); Linux calls it RxOverflow. */
export const RxDescUnavail = 0x0010;
export const RxOverflow = RxDescUnavail;
export const TxErr = 0x0008;
export const TxOK = 0x0004;
export const RxErr = 0x0002;
export const RxOK = 0x0001;

// --- RxConfig bits ----------------------------------------------------------------------------------------
export const AcceptErr = 0x20;
export const AcceptRunt = 0x10;
export const AcceptBroadcast = 0x08;
export const AcceptMulticast = 0x04;
export const AcceptMyPhys = 0x02;
export const AcceptAllPhys = 0x01;
/** Every accept bit. */
export const RX_CONFIG_ACCEPT_MASK = 0x3f;
/** RX FIFO threshold field shift (7 = no threshold) and RX DMA burst shift (7 = unlimited), as r8169 sets. */
export const RxCfgFIFOShift = 13;
export const RxCfgDMAShift = 8;

// --- TxConfig fields --------------------------------------------------------------------------------------
/** Interframe gap field shift (r8169 writes IFG 3 = 96-bit times). */
export const TxInterFrameGapShift = 24;
/** TX DMA burst field shift (7 = unlimited). */
export const TxDMAShift = 8;
/** Bits of TxConfig that are the read-only chip identification (XID = (TxConfig >> 20) & 0xfcf). */
export const TX_CONFIG_XID_MASK = 0x7cf00000;

// --- Cfg9346 values ---------------------------------------------------------------------------------------
export const Cfg9346_Lock = 0x00;
export const Cfg9346_Unlock = 0xc0;

// --- PHYstatus bits ---------------------------------------------------------------------------------------
export const TBI_Enable = 0x80;
export const TxFlowCtrl = 0x40;
export const RxFlowCtrl = 0x20;
export const _1000bpsF = 0x10;
export const _100bps = 0x08;
export const _10bps = 0x04;
export const LinkStatus = 0x02;
export const FullDup = 0x01;

// --- CPlusCmd bits ----------------------------------------------------------------------------------------
export const RxVlan = 0x0040;
export const RxChkSum = 0x0020;
export const PCIDAC = 0x0010;
export const PCIMulRW = 0x0008;

/** Names of the registers, for diagnostics. */
export const REGISTER_NAMES: Readonly<Record<number, string>> = {
  [MAC0]: 'MAC0',
  [MAR0]: 'MAR0',
  [TxDescStartAddrLow]: 'TxDescStartAddrLow',
  [TxDescStartAddrHigh]: 'TxDescStartAddrHigh',
  [ChipCmd]: 'ChipCmd',
  [TxPoll]: 'TxPoll',
  [IntrMask]: 'IntrMask',
  [IntrStatus]: 'IntrStatus',
  [TxConfig]: 'TxConfig',
  [RxConfig]: 'RxConfig',
  [RxMissed]: 'RxMissed',
  [Cfg9346]: 'Cfg9346',
  [PHYstatus]: 'PHYstatus',
  [RxMaxSize]: 'RxMaxSize',
  [CPlusCmd]: 'CPlusCmd',
  [RxDescAddrLow]: 'RxDescAddrLow',
  [RxDescAddrHigh]: 'RxDescAddrHigh',
};
