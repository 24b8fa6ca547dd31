/**
 * The task-side library: attach to a driver, obtain grants, send and receive frames, protocol helpers.
 * @packageDocumentation
 */
export {};
