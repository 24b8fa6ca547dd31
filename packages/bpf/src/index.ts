/**
 * Classic BPF: codecs, verifier, interpreter, compiler, pcap-filter language, analysis.
 * @packageDocumentation
 */
export {};
