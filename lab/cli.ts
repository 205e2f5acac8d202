// Bring a named topology up by hand:
//   node dist/lab/cli.js list
//   node dist/lab/cli.js up easy             # holds the lab until Ctrl-C, then tears down
//   node dist/lab/cli.js up easy --detach    # leaves it up (prefix trv-keep-...)
//   node dist/lab/cli.js down [PREFIX]       # removes detached labs (all, or one prefix)
//   node dist/lab/cli.js sweep               # removes leftovers of dead runs
import { namespacesWithPrefix, removeNamespaces, sweepStale, untrackLab } from './cleanup.js';
import { newPrefix } from './names.js';
import { createLab } from './topology.js';
import { TOPOLOGIES } from './topologies.js';

async function main(argv: string[]): Promise<number> {
  const [cmd, name] = argv;
  if (cmd === 'list' || cmd === undefined) {
    console.log(Object.keys(TOPOLOGIES).join('\n'));
    return 0;
  }
  if (cmd === 'up') {
    const factory = name === undefined ? undefined : TOPOLOGIES[name];
    if (!factory) {
      console.error(`unknown topology "${name ?? ''}"; one of: ${Object.keys(TOPOLOGIES).join(', ')}`);
      return 2;
    }
    const detach = argv.includes('--detach');
    const lab = await createLab(factory(), detach ? { prefix: newPrefix('keep') } : {});
    console.log(lab.describe());
    console.log(`\nrun in a node:  ip netns exec ${lab.node('stun').ns} <command>`);
    if (detach) {
      // Detached: no exit handler may tear it down; `down` does.
      untrackLab(lab);
      console.log(`tear down:      node dist/lab/cli.js down ${lab.prefix}`);
      return 0;
    }
    console.log('Ctrl-C tears it down.');
    // Signal listeners alone do not keep Node's event loop alive; this timer does.
    const keepAlive = setInterval(() => undefined, 1 << 30);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    clearInterval(keepAlive);
    await lab.teardown();
    return 0;
  }
  if (cmd === 'down') {
    const gone = await namespacesWithPrefix(name ?? 'trv-keep-');
    await removeNamespaces(gone);
    console.log(gone.length ? `removed ${gone.join(' ')}` : 'nothing to remove');
    return 0;
  }
  if (cmd === 'sweep') {
    const gone = await sweepStale();
    console.log(gone.length ? `removed ${gone.join(' ')}` : 'nothing stale');
    return 0;
  }
  console.error(`unknown command "${cmd}"; use list, up NAME [--detach], down [PREFIX], sweep`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  },
);
