// A minimal HTTP listener for Prometheus: GET /metrics, nothing else.
import http from 'node:http';

export interface MetricsHttpServer {
  readonly address: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Serves `render()` (Prometheus text format) at /metrics on host:port. */
export function serveMetrics(
  host: string,
  port: number,
  render: () => Promise<string>,
  contentType: string,
): Promise<MetricsHttpServer> {
  const server = http.createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: metrics are at /metrics\n');
      return;
    }
    render().then(
      (body) => res.writeHead(200, { 'content-type': contentType }).end(body),
      (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${String(err)}\n`),
    );
  });
  // Scrapers keep connections alive; close() must not wait for them.
  server.keepAliveTimeout = 5000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.off('error', reject);
      const a = server.address();
      resolve({
        address: host,
        port: typeof a === 'object' && a !== null ? a.port : port,
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}
