/** Bumped on any incompatible change to tunnel frames; `hello` carries it. */
export const PROTOCOL_VERSION = 1;
/** Versions this build can talk to. */
export const SUPPORTED_PROTOCOL_VERSIONS: readonly number[] = [1];
/** No frame, text or binary, may be larger than this on any socket. */
export const MAX_FRAME_BYTES = 1024 * 1024;
