export * from './messages.js';
export * from './seal.js';
export * from './replay.js';
