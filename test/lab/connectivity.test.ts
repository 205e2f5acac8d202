// The acceptance matrix of the peer engine: a coordination server and STUN servers on the lab's
// internet, an agent and a client behind real NATs, and the path `traverse ping` ends on.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { labSkip } from '../../lab/availability.js';
import { createLab } from '../../lab/topology.js';
import { MATRIX, runCell } from '../../lab/matrix.js';
import { miniupnpdSkip } from '../../lab/miniupnpd.js';

const skip = await labSkip();
const noMiniupnpd = await miniupnpdSkip();

describe('connectivity matrix', { skip, concurrency: 3 }, () => {
  for (const cell of MATRIX) {
    const needsMiniupnpd = (cell.topology().routers ?? []).some((r) => r.portMapping);
    test(`${cell.name}: ${cell.expect}`, { skip: needsMiniupnpd ? noMiniupnpd : false }, async () => {
      const lab = await createLab(cell.topology());
      try {
        const r = await runCell(cell, lab);
        const detail = JSON.stringify(r, null, 2);
        assert.equal(r.code, 0, detail);
        assert.ok(r.pongs.length > 0, detail);
        assert.equal(r.summary.path, cell.expect, detail);
        if (cell.expect === 'direct') {
          assert.equal(r.summary.transport, cell.transport ?? 'udp', detail);
          // Over a TCP lane only the streams go direct: the pings still cross the relay.
          assert.equal(r.pongs.at(-1)?.path, cell.transport === 'tcp' ? 'relay' : 'direct', detail);
          assert.ok(r.summary.timeToDirectMs !== null, detail);
          if (cell.endpointPrefix) assert.ok(r.summary.endpoint?.startsWith(cell.endpointPrefix), detail);
          if (cell.winner) assert.equal(r.winner, cell.winner, `the path should use the agent's ${cell.winner} candidate\n${detail}`);
        } else {
          assert.ok(r.pongs.every((p) => p.path === 'relay'), detail);
          if (cell.reason) assert.match(r.summary.reason ?? '', cell.reason, detail);
        }
      } finally {
        await lab.teardown();
      }
    });
  }
});
