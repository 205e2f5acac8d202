// Pure parts of gateway discovery and UPnP: /proc/net/route, SSDP answers, device descriptions,
// SOAP bodies, and the rule that only the gateway's own address is ever fetched.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { localAddressFor, parseDefaultRoute } from '../../src/portmap/gateway.js';
import { findWanService, onGateway, parseSoapValues, parseSsdpResponse } from '../../src/portmap/upnp.js';

const ROUTE = `Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0
eth0\t0001A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0
wlan0\t00000000\t010AA8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0
`;

test('the default route with the lowest metric, its gateway decoded from host byte order', () => {
  assert.deepEqual(parseDefaultRoute(ROUTE), { ifName: 'eth0', gateway: '192.168.1.1' });
  assert.equal(parseDefaultRoute('Iface\tDestination\n'), null);
  assert.equal(parseDefaultRoute('garbage\n\u0000\u0000'), null);
});

test('our address towards the gateway: the one on its subnet', () => {
  const ifaces = {
    eth0: [
      { address: '10.9.0.5', netmask: '255.255.255.0', family: 'IPv4', internal: false, mac: '', cidr: null },
      { address: '192.168.1.20', netmask: '255.255.255.0', family: 'IPv4', internal: false, mac: '', cidr: null },
    ],
  } as unknown as NodeJS.Dict<import('node:os').NetworkInterfaceInfo[]>;
  assert.equal(localAddressFor('eth0', '192.168.1.1', ifaces), '192.168.1.20');
  assert.equal(localAddressFor('eth1', '192.168.1.1', ifaces), null);
});

test('SSDP: the LOCATION of a 200 answer; anything else is not one', () => {
  assert.equal(parseSsdpResponse('HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=120\r\nLocation: http://192.168.1.1:5000/rootDesc.xml\r\nST: x\r\n\r\n'), 'http://192.168.1.1:5000/rootDesc.xml');
  assert.equal(parseSsdpResponse('NOTIFY * HTTP/1.1\r\nLOCATION: http://192.168.1.1/\r\n\r\n'), null);
  assert.equal(parseSsdpResponse('HTTP/1.1 200 OK\r\n\r\n'), null);
});

test('only plain HTTP on the gateway address is fetched', () => {
  assert.equal(onGateway('http://192.168.1.1:5000/x', '192.168.1.1'), true);
  assert.equal(onGateway('http://192.168.1.10:5000/x', '192.168.1.1'), false);
  assert.equal(onGateway('https://192.168.1.1/x', '192.168.1.1'), false);
  assert.equal(onGateway('file:///etc/passwd', '192.168.1.1'), false);
  assert.equal(onGateway('not a url', '192.168.1.1'), false);
});

test('description: WANIPConnection:2 before :1, control URL resolved against the description', () => {
  const xml = `<root><device><serviceList>
    <service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:1</serviceType><controlURL>/ctl/IPConn</controlURL></service>
    <service><serviceType>urn:schemas-upnp-org:service:WANIPConnection:2</serviceType><controlURL>/ctl/IPConn2?a=1&amp;b=2</controlURL></service>
  </serviceList></device></root>`;
  assert.deepEqual(findWanService(xml, 'http://192.168.1.1:5000/rootDesc.xml'), {
    serviceType: 'urn:schemas-upnp-org:service:WANIPConnection:2',
    controlUrl: 'http://192.168.1.1:5000/ctl/IPConn2?a=1&b=2',
  });
  assert.equal(findWanService('<root/>', 'http://192.168.1.1/'), null);
});

test('SOAP values by element name, prefixes dropped, entities decoded', () => {
  const v = parseSoapValues('<s:Envelope><s:Body><u:R><NewExternalIPAddress>203.0.113.2</NewExternalIPAddress><x:errorDescription>a &amp; b</x:errorDescription></u:R></s:Body></s:Envelope>');
  assert.equal(v.get('NewExternalIPAddress'), '203.0.113.2');
  assert.equal(v.get('errorDescription'), 'a & b');
});
