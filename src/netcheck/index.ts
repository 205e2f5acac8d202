export * from './report.js';
export * from './classify.js';
export * from './diagnosis.js';
export * from './netcheck.js';
