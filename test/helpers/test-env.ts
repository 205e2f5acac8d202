// The environment every traverse process a test starts runs with: the test's own, except that
// port mapping is off unless the test asks for it. Port mapping talks to the machine's real
// gateway (PCP, NAT-PMP, SSDP), which no loopback test may reach; `npm test` turns it off too,
// this keeps a file run by hand (node --test dist/test/...) from sending anything either.
export function testEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...process.env, TRAVERSE_PORT_MAPPING: process.env.TRAVERSE_PORT_MAPPING ?? '0', ...extra };
}
