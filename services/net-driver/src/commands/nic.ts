import type { Command } from 'commander';
import type { NetDevice } from '../driver/net-device.ts';
import { PcapTapDevice } from '../driver/pcap-tap.ts';
import { NicError } from '../errors.ts';
import { DEFAULT_MAC } from '../nic/in-thread.ts';
import { openNic } from '../nic/open-nic.ts';
import { openPcapFile, PcapWriter } from '../wire/pcap-file.ts';
import { WIRE_SPEC_FORMS } from '../wire/spec.ts';

/** Parses aa:bb:cc:dd:ee:ff. */
export function parseMac(text: string): Uint8Array {
  const m = /^([0-9a-f]{2})(?::([0-9a-f]{2})){5}$/i.test(text) ? text.split(':') : null;
  if (!m) throw new NicError('EXO_ERR_NIC_CONFIG', `expected a MAC address like 00:e0:4c:69:81:69, got "${text}"`);
  const mac = Uint8Array.from(m.map((h) => Number.parseInt(h, 16)));
  if (mac[0] & 1) throw new NicError('EXO_ERR_NIC_CONFIG', `expected a unicast MAC address, got "${text}"`);
  return mac;
}

const hex = (b: Uint8Array, from: number, to: number) =>
  Array.from(b.subarray(from, to), (x) => x.toString(16).padStart(2, '0')).join(':');

/** One line per frame, as tcpdump -e prints the link layer. */
export function describeFrame(frame: Uint8Array, length: number): string {
  if (length < 14) return `runt, length ${length}`;
  const type = (frame[12] << 8) | frame[13];
  return `${hex(frame, 6, 12)} > ${hex(frame, 0, 6)}, ethertype 0x${type.toString(16).padStart(4, '0')}, length ${length}`;
}

/** `exonet nic capture` and `exonet nic send`: an RTL8169 model and its driver on a wire, from the shell. */
export function registerNicCommands(program: Command): void {
  const nic = program.command('nic').description('an RTL8169 model and its driver on a wire');
  nic
    .command('capture')
    .description('bring the NIC up on a wire and print (or save) the frames it receives')
    .requiredOption('--wire <spec>', `wire: ${WIRE_SPEC_FORMS.join(' | ')}`)
    .option('--mac <mac>', 'station address', hex(DEFAULT_MAC, 0, 6))
    .option('--count <n>', 'stop after N frames')
    .option('--seconds <s>', 'stop after S seconds')
    .option('--pcap <file>', 'also write the frames to a pcap file')
    .option('--promisc', 'accept frames to any address')
    .option('--worker', 'run the model in a worker thread')
    .action(
      async (o: {
        wire: string;
        mac: string;
        count?: string;
        seconds?: string;
        pcap?: string;
        promisc?: boolean;
        worker?: boolean;
      }) => {
        const limit = o.count === undefined ? Number.POSITIVE_INFINITY : Number(o.count);
        const seconds = o.seconds === undefined ? Number.POSITIVE_INFINITY : Number(o.seconds);
        if (!(limit > 0) || !(seconds > 0))
          throw new NicError('EXO_ERR_NIC_CONFIG', 'expected positive --count and --seconds');
        const opened = await openNic({ wire: o.wire, mac: parseMac(o.mac), worker: Boolean(o.worker) });
        const writer = o.pcap ? new PcapWriter(o.pcap) : undefined;
        const dev: NetDevice = writer ? new PcapTapDevice(opened.driver, writer, { rx: true }) : opened.driver;
        let seen = 0;
        const deadline = Date.now() + seconds * 1000;
        let stopped = false;
        const onSignal = () => {
          stopped = true;
        };
        process.once('SIGINT', onSignal);
        try {
          dev.start();
          if (o.promisc) dev.setReceiveFilter({ promiscuous: true });
          const sink = (f: Uint8Array, n: number) => {
            if (seen < limit) process.stdout.write(`${describeFrame(f, n)}\n`);
            seen++;
          };
          while (!stopped && seen < limit && Date.now() < deadline) {
            opened.pump(32);
            if (dev.receive(sink, 64) === 0) await new Promise((r) => setTimeout(r, 2));
          }
          const c = dev.counters();
          process.stderr.write(`${Math.min(seen, limit)} frames; missed ${c.rxMissed}, errors ${c.rxErrors}\n`);
        } finally {
          process.off('SIGINT', onSignal);
          await opened.close();
          writer?.close();
        }
      },
    );
  nic
    .command('send')
    .description('bring the NIC up on a wire and transmit every frame of a pcap file')
    .requiredOption('--wire <spec>', `wire: ${WIRE_SPEC_FORMS.join(' | ')}`)
    .requiredOption('--pcap <file>', 'frames to send')
    .option('--mac <mac>', 'station address', hex(DEFAULT_MAC, 0, 6))
    .action(async (o: { wire: string; pcap: string; mac: string }) => {
      const reader = openPcapFile(o.pcap);
      const opened = await openNic({ wire: o.wire, mac: parseMac(o.mac) });
      try {
        const dev = opened.driver;
        dev.start();
        let sent = 0;
        for (let rec = reader.next(); rec; rec = reader.next()) {
          if (rec.data.length < 14 || rec.data.length > dev.capabilities.maxFrameSize) continue;
          while (!dev.transmit(rec.data)) {
            dev.txCommit();
            dev.receive(() => {});
            await new Promise((r) => setImmediate(r));
          }
          sent++;
          if (sent % 32 === 0) dev.txCommit();
        }
        dev.txCommit();
        // Let the datagrams leave before the socket closes.
        await new Promise((r) => setTimeout(r, 50));
        process.stdout.write(`${sent} frames sent\n`);
      } finally {
        await opened.close();
      }
    });
}
