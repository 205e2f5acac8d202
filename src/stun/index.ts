// The STUN layer's public surface.
export * from './constants.js';
export * from './errors.js';
export * from './message.js';
export * from './attributes.js';
export * from './encode.js';
export * from './integrity.js';
export * from './credentials.js';
