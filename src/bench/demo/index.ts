/**
 * `xenpv demo`, the main job: PV drivers against the path they replace, told by measurement.
 * `runDemo({ quick, json, out })` boots a host in-process, runs disk and network work through
 * PV guests and natively, prints the table (or JSON) and writes demo.{json,md,svg,png}.
 */
export { runDemo, type DemoOptions, type DemoOutcome } from './run.js';
export { FIGURES, PATHS, type DemoRow, type FigureDef, type IoPath } from './figures.js';
export { TITLE, EMULATED_STATUS, type DemoReport, type JsonRow } from './report.js';
export { FULL_PLAN, QUICK_PLAN, type DemoPlan } from './plan.js';
