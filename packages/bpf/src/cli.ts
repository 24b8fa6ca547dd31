/**
 * `exonet bpf ...`: compile, verify and run filters from the command line (forms fixed by
 * ARCHITECTURE.md), and the `bpf` benchmark.
 * @module
 */
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { readCaptureFile } from './capture-file.ts';
import { decodeProgram } from './codec-binary.ts';
import { formatProgram, type ProgramFormat, parseProgramText } from './codec-text.ts';
import { compileExpression, KNOWN_LINKTYPES, type LinkLayer, linkLayerOf } from './compile-expression.ts';
import { compileProgram } from './compiler-js.ts';
import { BpfError, BpfErrorCode } from './errors.ts';
import type { Program } from './insn.ts';
import { interpret } from './interpreter.ts';
import { verifyProgram } from './verifier.ts';

/** Where the commands write; tests pass their own. */
export interface CliIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  readonly setExitCode: (code: number) => void;
}

const processIo: CliIo = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
  setExitCode: (c) => {
    process.exitCode = c;
  },
};

function readFile(path: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    throw new BpfError(BpfErrorCode.ARGUMENT, `cannot read ${path}: ${code}`);
  }
}

/**
 * A program file: tcpdump -d/-dd/-ddd or Linux comma text; or, if it is not text, the 8-byte binary form.
 */
export function readProgramFile(path: string): Program {
  const bytes = readFile(path);
  const looksBinary = bytes.some((b) => b === 0 || (b < 0x20 && b !== 0x0a && b !== 0x0d && b !== 0x09) || b > 0x7e);
  if (looksBinary) return decodeProgram(bytes);
  return parseProgramText(Buffer.from(bytes).toString('latin1'));
}

function rootOf(cmd: Command): Command & { rawArgs?: string[] } {
  let c = cmd;
  while (c.parent) c = c.parent;
  return c as Command & { rawArgs?: string[] };
}

/** tcpdump's `-y` names of the link types expressions compile for. */
const DLT_NAMES: Record<string, LinkLayer> = {
  EN10MB: 'ethernet',
  LINUX_SLL: 'linux-sll',
  LINUX_SLL2: 'linux-sll2',
  RAW: 'raw',
  IPV4: 'ipv4',
  IPV6: 'ipv6',
};

/** A `--linktype` value: a tcpdump -y name (DLT_ prefix optional) or a LINKTYPE number. */
function parseLinkType(value: string): LinkLayer {
  const name = value.toUpperCase().replace(/^DLT_/, '');
  const link = /^\d+$/.test(value) ? linkLayerOf(Number(value)) : DLT_NAMES[name];
  if (link === undefined) {
    throw new BpfError(
      BpfErrorCode.ARGUMENT,
      `--linktype: "${value}" is not one of ${Object.keys(DLT_NAMES).join(', ')} (or a LINKTYPE: ${KNOWN_LINKTYPES})`,
    );
  }
  return link;
}

/** Adds `exonet bpf compile|verify|run` to the command line. */
export function registerCommands(program: Command, io: CliIo = processIo): void {
  const bpf = program
    .command('bpf')
    .description('classic BPF: compile pcap-filter expressions, verify and run programs');

  bpf
    .command('compile')
    .description("compile a pcap-filter expression and print it in tcpdump's format (-d when no flag is given)")
    .argument('<expr...>', 'the expression (several words are joined with spaces, as tcpdump does)')
    .option('-d', 'print like tcpdump -d (the default)')
    .option('--dd', 'print like tcpdump -dd (C array; -dd works too)')
    .option('--ddd', 'print like tcpdump -ddd (decimal; -ddd works too)')
    .option('--snaplen <n>', 'the value returned on accept', '262144')
    .option(
      '-y, --linktype <type>',
      'the link layer, as tcpdump -y: EN10MB, LINUX_SLL, LINUX_SLL2, RAW, IPV4, IPV6',
      'EN10MB',
    )
    .action(
      (
        words: string[],
        opts: { d?: boolean; dd?: boolean; ddd?: boolean; snaplen: string; linktype: string },
        cmd: Command,
      ) => {
        const snaplen = Number(opts.snaplen);
        // tcpdump's own spellings -dd and -ddd would reach commander as repeated -d: honour them.
        const raw = rootOf(cmd).rawArgs ?? [];
        const format: ProgramFormat =
          opts.ddd || raw.includes('-ddd') ? 'ddd' : opts.dd || raw.includes('-dd') ? 'dd' : 'd';
        const p = compileExpression(words.join(' '), { snaplen, link: parseLinkType(opts.linktype) });
        io.out(formatProgram(p, format));
      },
    );

  bpf
    .command('verify')
    .description('check a program (tcpdump -dd or -ddd text); exit 0 if accepted, 1 with the reason if not')
    .argument('<file>', 'program file')
    .action((file: string) => {
      const p = readProgramFile(file);
      const v = verifyProgram(p);
      if (v.ok) {
        io.out(`accepted: ${p.length} instruction${p.length === 1 ? '' : 's'}\n`);
        return;
      }
      io.err(`rejected: ${v.message} (rule ${v.rule})\n`);
      io.setExitCode(1);
    });

  bpf
    .command('run')
    .description('run a filter over a pcap file: one line per packet, the return value in decimal')
    .requiredOption('--pcap <file>', 'capture file: pcap or pcapng (expressions compile for its link type)')
    .option('--program <file>', 'program file (tcpdump -dd/-ddd text) instead of an expression')
    .option('--engine <engine>', 'interpreter or compiled', 'compiled')
    .argument('[expr...]', 'a pcap-filter expression, when --program is not given')
    .action((words: string[], opts: { pcap: string; program?: string; engine: string }) => {
      if (opts.engine !== 'interpreter' && opts.engine !== 'compiled') {
        throw new BpfError(BpfErrorCode.ARGUMENT, `--engine must be interpreter or compiled, got "${opts.engine}"`);
      }
      if (opts.program && words.length)
        throw new BpfError(BpfErrorCode.ARGUMENT, 'give either --program or an expression, not both');
      if (!opts.program && !words.length)
        throw new BpfError(BpfErrorCode.ARGUMENT, 'give --program FILE or an expression');
      const capture = readCaptureFile(readFile(opts.pcap));
      // An expression is compiled for the file's link type, as tcpdump -r does; a program file runs on the
      // captured bytes whatever they are.
      let p: Program;
      if (opts.program) p = readProgramFile(opts.program);
      else {
        const link = linkLayerOf(capture.linktype);
        if (link === undefined) {
          throw new BpfError(
            BpfErrorCode.ARGUMENT,
            `pcap file: link type ${capture.linktype} is not one expressions compile for (${KNOWN_LINKTYPES}); give --program FILE`,
          );
        }
        p = compileExpression(words.join(' '), { link });
      }
      const v = verifyProgram(p);
      if (!v.ok) throw new BpfError(BpfErrorCode.VERIFY, `program rejected: ${v.message} (rule ${v.rule})`);
      const run =
        opts.engine === 'compiled'
          ? compileProgram(p)
          : (pkt: Uint8Array, wire: number, buf: number) => interpret(p, pkt, wire, buf);
      const lines: string[] = [];
      for (const pk of capture.packets) lines.push(String(run(pk.data, pk.wirelen, pk.data.length)));
      io.out(lines.length ? `${lines.join('\n')}\n` : '');
    });
}

/** `exonet bench bpf`. */
export const benchmarks = { bpf: () => import('./bench/bpf.ts') };
