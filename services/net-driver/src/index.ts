/**
 * RTL8169 model, its driver, and the exokernel packet path: verified grants, demux, layered TX filtering.
 * @packageDocumentation
 */
export {};
