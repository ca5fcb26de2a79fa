import os from 'node:os';
import type { SystemInfo } from '../shared/protocol/tunnel';

export function systemInfo(): SystemInfo {
  return {
    hostname: os.hostname().slice(0, 256),
    platform: os.platform(),
    arch: os.arch(),
    cpus: os.cpus().length,
    loadavg: os.loadavg(),
    memTotal: os.totalmem(),
    memFree: os.freemem(),
    uptime: Math.round(os.uptime()),
  };
}
