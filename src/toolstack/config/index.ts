/**
 * What the rest of the toolstack and the CLI use of the configuration layer: xl.cfg files
 * to DomainConfig, disk and vif specs (also typed on command lines), and vdev numbers.
 */
export * from './config-error.js';
export * from './xlcfg/lexer.js';
export * from './xlcfg/parser.js';
export * from './xlcfg/printer.js';
export * from './xlcfg/values.js';
export * from './vdev.js';
export * from './disk-spec.js';
export * from './vif-rate.js';
export * from './vif-spec.js';
export * from './vif-defaults.js';
export * from './domain-keys.js';
export * from './domain-config.js';
