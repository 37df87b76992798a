export { checkPreferenceJsonl, preferenceLine, PreferenceCheck } from './index.js';
