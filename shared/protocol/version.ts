/** Bumped on any incompatible change to tunnel frames; `hello` carries it. */
export const PROTOCOL_VERSION = 2;
/** Versions this build can talk to. */
// 2: preview requests are `http.request` events answered by an HttpHead frame (or `http.error`), not req/res.
export const SUPPORTED_PROTOCOL_VERSIONS: readonly number[] = [2];
/** No frame, text or binary, may be larger than this on any socket. */
export const MAX_FRAME_BYTES = 1024 * 1024;
