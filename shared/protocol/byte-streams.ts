/**
 * One-shot byte streams over a session's data socket: file bodies, tar
 * archives, preview request and response bodies, relayed WebSocket messages.
 * The side that opens a stream allocates its id; bytes travel as binary frames
 * (kind File, HttpBody or WsMessage) with exact offsets and the End flag on the
 * last; the receiver answers `event ack {streamId, offset}` as it consumes, and
 * the sender never has more than BYTE_STREAM_WINDOW bytes unacknowledged.
 * Unlike process output these streams are not resumable: if the data socket
 * drops, the operation fails and the caller retries it. Both ends keep these
 * rules in one state machine, ./byte-window.ts.
 */
export const BYTE_STREAM_WINDOW = 4 * 1024 * 1024;
export const BYTE_STREAM_CHUNK = 256 * 1024;
