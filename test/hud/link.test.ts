/** The HUD link against the embedded broker (aedes, MQTT 3.1.1): the reliability suite and link-only checks. */
import { describe } from 'vitest';
import { AedesTestBroker, defineLinkSuite } from './support.js';

describe('HudLink on the embedded broker (aedes)', () => {
  defineLinkSuite(() => AedesTestBroker.start());
});
