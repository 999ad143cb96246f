/** Test data uses the product's seeded generator (calibration/math/random.ts): one concept, one place. */
export { seededRandom, gaussianRandom } from '../../calibration/math/random.js';
