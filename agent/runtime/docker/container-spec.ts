/**
 * What a session container is: the one place that decides its limits,
 * privileges, network, mount and labels. `docker inspect` of a session shows
 * exactly this.
 */
import type Docker from 'dockerode';
import { DAEMON_BUNDLE_PATH, DAEMON_RUN_DIR, NO_DAEMON_MARK } from '../../daemon/protocol';
import type { SessionSpec } from '../runtime';
import type { ContainerUser } from './image-user';

export const LABEL_PREFIX = 'dev.mominai';
export const Labels = {
  managed: `${LABEL_PREFIX}.managed`,
  session: `${LABEL_PREFIX}.session`,
  user: `${LABEL_PREFIX}.user`,
  agent: `${LABEL_PREFIX}.agent`,
  ports: `${LABEL_PREFIX}.ports`,
  network: `${LABEL_PREFIX}.network`,
  /** `on`: the container's main process is the session daemon (when its image has Node ≥ 18). */
  daemon: `${LABEL_PREFIX}.daemon`,
} as const;

export const WORKSPACE_MOUNT = '/workspace';

/**
 * Capabilities kept after dropping ALL. They matter only for images without a
 * non-root user: a non-root process holds no capabilities at all, and
 * no-new-privileges stops it gaining any through setuid binaries.
 *  - CHOWN, FOWNER: package managers running as root (npm, pip, apt) set the
 *    owner and mode of files they unpack.
 *  - DAC_OVERRIDE: root reads and writes files other users made in the
 *    workspace (a `node_modules` installed as uid 1000, say).
 *  - SETUID, SETGID: tools that drop privileges to another user (apt's `_apt`
 *    sandbox, npm running lifecycle scripts as the folder's owner) fail hard
 *    without them.
 * Not kept: NET_BIND_SERVICE (Docker 20.10+ sets ip_unprivileged_port_start=0,
 * so ports below 1024 bind without it), KILL (a session only signals its own
 * uid's processes), NET_RAW (no ping/raw sockets), MKNOD, AUDIT_WRITE,
 * SYS_CHROOT, SETPCAP, SETFCAP, FSETID (Docker's defaults a dev box does not need).
 */
export const CAP_ADD = ['CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'SETUID', 'SETGID'] as const;

/**
 * The main process: waits forever and exits at once on SIGTERM. With
 * `Init: true` Docker's tini is PID 1 and forwards the stop signal, so a stop
 * takes milliseconds instead of the full timeout.
 */
export const KEEPALIVE_CMD = ['sh', '-c', 'trap "exit 0" TERM INT; while :; do sleep 3600 & wait $!; done'];

/**
 * The main process of a container with the session daemon mounted: the
 * daemon when the image's Node is 18 or newer, else a mark the agent reads
 * (so it uses docker exec) and the keep-alive loop. Asking `node --version`
 * costs a few milliseconds at start and no probe container per image.
 */
export const DAEMON_ENTRY_CMD = [
  'sh',
  '-c',
  `v=$(node --version 2>/dev/null); case "$v" in v1[89].*|v[2-9][0-9].*) exec node ${DAEMON_BUNDLE_PATH} ${DAEMON_RUN_DIR};; esac; ` +
    `: > ${DAEMON_RUN_DIR}/${NO_DAEMON_MARK}; trap "exit 0" TERM INT; while :; do sleep 3600 & wait $!; done`,
];

/**
 * Under gVisor the session's processes are tasks of the sandbox kernel, not
 * host processes; what the pids cgroup counts is the sandbox's own host
 * threads (about 150 after a few dozen execs, measured), so a limit sized for
 * the session's processes alone kills the sandbox. The headroom keeps the
 * limit a bound on the sandbox's host threads; a fork bomb inside ends the
 * sandbox (measured), never its neighbours.
 */
export const RUNSC_PIDS_HEADROOM = 1024;

export function containerName(sessionId: string): string {
  return `mominai-${sessionId}`;
}

export interface ContainerSpecInput {
  spec: SessionSpec;
  imageId: string;
  user: ContainerUser;
  /** The agent's bridge network, or null for a session with loopback only (`network: "none"`). */
  network: string | null;
  workspace: string;
  /** The `dev.mominai.agent` label value. */
  agent: string;
  /** Engine runtime (`runsc` for gVisor); absent: the engine's default. */
  runtime?: string;
  /** Binds of the session daemon (its bundle read-only, its run folder); absent or null: no daemon. */
  daemon?: string[] | null;
}

export function sessionLabels(spec: Pick<SessionSpec, 'sessionId' | 'userId' | 'ports'>, agent: string): Record<string, string> {
  return {
    [Labels.managed]: 'true',
    [Labels.session]: spec.sessionId,
    [Labels.user]: spec.userId,
    [Labels.agent]: agent,
    [Labels.ports]: spec.ports.join(','),
  };
}

/**
 * Root filesystem: writable. Dev tools write all over it (npm's cache in the
 * home folder, global installs, /tmp); the changes die with the container and
 * the workspace, the only thing meant to last, is the bind mount. A read-only
 * root would need tmpfs for every such place and breaks images that expect
 * to write elsewhere. Disk use is not capped (overlay2 on ext4 has no
 * per-container quota).
 */
export function containerOptions(input: ContainerSpecInput): Docker.ContainerCreateOptions {
  const { spec, imageId, user, network, workspace, agent } = input;
  const exposed = Object.fromEntries(spec.ports.map((p) => [`${p}/tcp`, {}]));
  // A user the image does not know has no home folder: give tools a writable one.
  const env = user.name === undefined && user.uid !== 0 && !spec.env.some((e) => e.startsWith('HOME=')) ? ['HOME=/tmp', ...spec.env] : spec.env;
  return {
    name: containerName(spec.sessionId),
    Image: imageId,
    // The image's ENTRYPOINT would wrap or replace the keep-alive process.
    Entrypoint: [],
    Cmd: input.daemon ? DAEMON_ENTRY_CMD : KEEPALIVE_CMD,
    User: user.user,
    WorkingDir: WORKSPACE_MOUNT,
    Env: env,
    Tty: false,
    OpenStdin: false,
    Labels: { ...sessionLabels(spec, agent), [Labels.network]: network ? 'internet' : 'none', ...(input.daemon ? { [Labels.daemon]: 'on' } : {}) },
    // Documents the app's ports; nothing is published on the host.
    ExposedPorts: exposed,
    HostConfig: {
      Memory: spec.limits.memoryBytes,
      MemorySwap: spec.limits.memoryBytes,
      NanoCpus: Math.round(spec.limits.cpu * 1e9),
      PidsLimit: input.runtime === 'runsc' ? spec.limits.pids + RUNSC_PIDS_HEADROOM : spec.limits.pids,
      CapDrop: ['ALL'],
      CapAdd: [...CAP_ADD],
      SecurityOpt: ['no-new-privileges'],
      Init: true,
      Privileged: false,
      NetworkMode: network ?? 'none',
      ...(input.runtime ? { Runtime: input.runtime } : {}),
      PortBindings: {},
      PublishAllPorts: false,
      Binds: [`${workspace}:${WORKSPACE_MOUNT}`, ...(input.daemon ?? [])],
      RestartPolicy: { Name: 'no' },
      LogConfig: { Type: 'json-file', Config: { 'max-size': '1m', 'max-file': '1' } },
    },
    ...(network ? { NetworkingConfig: { EndpointsConfig: { [network]: {} } } } : {}),
  };
}
