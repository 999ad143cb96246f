// Process entry of the `arhud` CLI (bin/arhud runs the compiled copy of this file).
import { main } from './cli.js';

await main(process.argv);
