export * from './version';
export * from './binary';
export * from './tunnel';
